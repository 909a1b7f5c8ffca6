//! Pure domain types: no I/O, no database, no clock.

mod email;
mod story;
mod subscriber;

pub use email::{EmailAddress, EmailError, Mailbox};
pub use story::{NewStory, StoredStory, StoryKey, TagOrigin, TaggedTag, normalise_tag};
pub use subscriber::{DeliveryStatus, NameError, Subscriber, SubscriberName, SubscriberStatus};
