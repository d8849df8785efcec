//! The lease store: recovery, torn writes, group commit and durability,
//! the gather window, disk full (needs root), kill -9 of a writer, and a
//! state directory someone else can write to (needs root: chown).

mod common;

mod damage;
mod disk_full;
mod durability;
mod gather;
mod kill9;
mod powerloss;
mod recovery;
mod sim;
mod state_dir;
mod torn;
mod writer_death;
