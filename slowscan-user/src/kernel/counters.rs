//! Per-CPU outcome counters, summed over CPUs.
use std::borrow::Borrow;

use aya::maps::{MapData, PerCpuArray};
use slowscan_common::{Counter, CounterBlock};

/// A snapshot of every kernel counter, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub CounterBlock);

impl Counters {
    pub fn read<T: Borrow<MapData>>(map: &PerCpuArray<T, CounterBlock>) -> anyhow::Result<Self> {
        let per_cpu = map.get(&0, 0)?;
        let mut sum = CounterBlock::default();
        for block in per_cpu.iter() {
            for (s, v) in sum.counts.iter_mut().zip(block.counts.iter()) {
                *s += v;
            }
        }
        Ok(Self(sum))
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.0.get(c)
    }

    /// Per-counter difference `self - before`, for tests and rates.
    pub fn since(&self, before: &Counters) -> Counters {
        let mut d = CounterBlock::default();
        for (i, v) in d.counts.iter_mut().enumerate() {
            *v = self.0.counts[i].wrapping_sub(before.0.counts[i]);
        }
        Counters(d)
    }

    /// (name, value) for every counter, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Counter::ALL.iter().map(move |c| (c.name(), self.get(*c)))
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (name, v) in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{name}={v}")?;
        }
        Ok(())
    }
}
