//! The roles of switchyard and how one process runs some or all of them: the library behind
//! `switchyard up` and `switchyard run <role>`, also used by the end-to-end tests and the
//! benchmark so they run exactly what production runs.

pub mod pipeline;
