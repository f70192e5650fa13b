//! Cross-feature read models: views that combine several features' data (my tasks, the decision brief,
//! turnaround). They may read anything; no feature depends on them (only routes call them).

pub mod brief;
pub mod pool_glance;
pub mod tasks;
pub mod turnaround;
