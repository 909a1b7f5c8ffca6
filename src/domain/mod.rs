//! Pure domain types: no I/O, no database, no clock.

mod card;
pub mod configured;
mod editorial;
mod email;
mod inbound;
mod story;
mod subscriber;

pub use card::{
    AudienceText, Card, CardEdit, CardField, CardSource, CardText, Grounding, MAX_TAKEAWAYS, Takeaway, ThreadEvent,
};
pub use editorial::{Overrides, Pin};
pub use email::{EmailAddress, EmailError, Mailbox, ReturnPath};
pub use inbound::{Channel, InboundKind};
pub use story::{NewStory, StoredStory, StoryKey, TagOrigin, TaggedTag, Validators, normalise_tag};
pub use subscriber::{DeliveryStatus, NameError, Subscriber, SubscriberName, SubscriberStatus};
