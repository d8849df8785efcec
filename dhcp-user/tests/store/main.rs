//! The lease store: recovery, torn writes, group commit and durability,
//! the gather window, disk full (needs root) and kill -9 of a writer.

mod common;

mod damage;
mod disk_full;
mod durability;
mod gather;
mod kill9;
mod recovery;
mod torn;
mod writer_death;
