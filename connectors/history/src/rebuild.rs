//! `switchyard history rebuild`: a store rebuilt from the topics the history stage consumes.
