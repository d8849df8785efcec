//! The lease store: recovery, torn writes, group commit and durability,
//! the gather window, disk full (needs root), kill -9 of a writer, a power
//! loss after every file operation and a fault at every one (`sim`), and a
//! state directory someone else can write to (needs root: chown).

mod common;

mod damage;
mod disk_full;
mod durability;
mod faults;
mod gather;
mod kill9;
mod powerloss;
mod recovery;
mod sim;
mod state_dir;
mod torn;
mod writer_death;
