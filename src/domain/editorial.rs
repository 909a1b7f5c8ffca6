//! An editor's choices for the next issue of an edition: what the store
//! keeps and ranking honours.

use std::collections::BTreeSet;

/// An editor's choices for the next issue of an edition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// In the order they were made.
    pub pins: Vec<Pin>,
    pub excluded: BTreeSet<i64>,
    /// The intro note shown above the stories.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub story_id: i64,
    /// 1-based place in its section; `None`: where its score puts it.
    pub position: Option<usize>,
}
