//! "Entries present" flags beside an LPM trie: the kernel skips a trie's
//! lookup while its flag is zero, so an unused list costs one array load.
use std::borrow::{Borrow, BorrowMut};

use anyhow::Context;
use aya::maps::{Array, MapData, MapError};

/// Is `e` the system error `errno`?
pub fn is_errno(e: &MapError, errno: i32) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(errno))
}

/// Did a removal find nothing to remove (not an error)?
pub fn is_absent(e: &MapError) -> bool {
    matches!(e, MapError::KeyNotFound) || is_errno(e, libc::ENOENT)
}

/// Did an insert fail for want of room?
pub fn is_full(e: &MapError) -> bool {
    is_errno(e, libc::ENOSPC) || is_errno(e, libc::E2BIG)
}

/// An array of u32 flags, one per trie; `what` names them in errors.
pub struct ActiveFlags<T> {
    array: Array<T, u32>,
    what: &'static str,
}

impl<T: Borrow<MapData>> ActiveFlags<T> {
    pub fn new(array: Array<T, u32>, what: &'static str) -> Self {
        Self { array, what }
    }
}

impl<T: BorrowMut<MapData>> ActiveFlags<T> {
    /// Call after an entry was added: the kernel looks only once the flag is set.
    pub fn raise(&mut self, slot: u32) -> anyhow::Result<()> {
        self.set(slot, true)
    }

    /// Call after an entry was removed: clears the flag if the trie is
    /// empty. Another process may add an entry between the check and the
    /// store, so it looks again and never leaves the flag off over entries.
    pub fn settle(&mut self, slot: u32, empty: impl Fn() -> bool) -> anyhow::Result<()> {
        if empty() {
            self.set(slot, false)?;
            if !empty() {
                self.set(slot, true)?;
            }
        }
        Ok(())
    }

    fn set(&mut self, slot: u32, on: bool) -> anyhow::Result<()> {
        self.array
            .set(slot, u32::from(on), 0)
            .with_context(|| format!("setting the {} active flag", self.what))
    }
}
