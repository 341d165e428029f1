//! A stage's `resources:` key: what a cluster scheduler must grant the stage's job (CPUs,
//! memory, GPUs, a time limit).
//!
//! Only an executor that submits jobs (Slurm) reads them; a local run ignores them, as it
//! ignores `threads` beyond its thread budget. Like threads, resources are not part of the
//! cache key: a stage computed with 8 GB reuses a result computed with 4 GB. Memory and time
//! must carry a unit (`512M`, `4G`; `90s`, `30m`, `2h`, `1h30m`, `1d`, or `H:MM:SS`), because a
//! bare number means megabytes to one scheduler and minutes to another.

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::vars::{self, join};
use super::yaml::Node;
use crate::suggest::nearest;

/// The keys of `resources:`.
const KEYS: &[&str] = &["cpus", "memory", "gpus", "time"];

/// What a stage's job asks of a scheduler; `None` leaves the scheduler's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU cores.
    pub cpus: Option<usize>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// GPUs (0 asks for none).
    pub gpus: Option<usize>,
    /// Wall-time limit in seconds.
    pub time_seconds: Option<u64>,
}

impl Resources {
    /// Whether the stage asks for at least one GPU.
    pub fn wants_gpu(&self) -> bool {
        self.gpus.is_some_and(|g| g > 0)
    }

    /// The larger of two requests, field by field: what one job running both needs.
    pub fn max(self, other: Resources) -> Resources {
        Resources {
            cpus: self.cpus.max(other.cpus),
            memory_mib: self.memory_mib.max(other.memory_mib),
            gpus: self.gpus.max(other.gpus),
            time_seconds: self.time_seconds.max(other.time_seconds),
        }
    }

    /// These resources, with `defaults` for what they leave unsaid.
    pub fn or(self, defaults: Resources) -> Resources {
        Resources {
            cpus: self.cpus.or(defaults.cpus),
            memory_mib: self.memory_mib.or(defaults.memory_mib),
            gpus: self.gpus.or(defaults.gpus),
            time_seconds: self.time_seconds.or(defaults.time_seconds),
        }
    }
}

/// Reads a `resources:` mapping outside a pipeline file (a configuration file), where there
/// are no variables.
pub fn read_plain(node: &Node, path: &str) -> Result<Resources, SpecError> {
    let none = std::collections::BTreeMap::new();
    read(node, path, &mut vars::VarLookup { vars: &none })
}

/// Reads a stage's `resources:` mapping at `path`.
pub(super) fn read(
    node: &Node,
    path: &str,
    lookup: &mut dyn vars::Lookup,
) -> Result<Resources, SpecError> {
    let mut node = node.clone();
    vars::substitute(&mut node, path, lookup)?;
    let Some(entries) = node.as_map() else {
        return Err(SpecError::new(
            format!("`resources` is a mapping, found {}", node.describe()),
            Some(&node.span),
            path,
        )
        .note("for example: `resources: {cpus: 4, memory: 8G, gpus: 1, time: 2h}`"));
    };
    let mut resources = Resources::default();
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default();
        let at = join(path, name);
        match name {
            "cpus" => resources.cpus = Some(count(value, &at, 1)?),
            "gpus" => resources.gpus = Some(count(value, &at, 0)?),
            "memory" => resources.memory_mib = Some(quantity(value, &at, memory_mib)?),
            "time" => resources.time_seconds = Some(quantity(value, &at, seconds)?),
            _ => {
                return Err(
                    SpecError::new(format!("unknown key `{name}`"), Some(&key.span), at)
                        .expected_one_of(KEYS.iter().copied())
                        .suggest(nearest(name, KEYS.iter().copied())),
                );
            }
        }
    }
    Ok(resources)
}

fn count(node: &Node, path: &str, min: usize) -> Result<usize, SpecError> {
    let n: usize = super::yaml::from_node(node).map_err(|e| SpecError::from_de(e, path))?;
    if n < min {
        return Err(SpecError::new(
            format!("expected at least {min}, found {n}"),
            Some(&node.span),
            path,
        ));
    }
    Ok(n)
}

/// Reads a scalar with a unit through `parse`, which says what is wrong with bad text.
fn quantity(
    node: &Node,
    path: &str,
    parse: fn(&str) -> Result<u64, String>,
) -> Result<u64, SpecError> {
    let Some(text) = node.as_str() else {
        return Err(SpecError::new(
            format!("expected a value with a unit, found {}", node.describe()),
            Some(&node.span),
            path,
        ));
    };
    parse(text.trim()).map_err(|why| SpecError::new(why, Some(&node.span), path))
}

/// `512M`, `4G`, `1.5GB`, `2T` as MiB (binary units, as Slurm reads them), rounded up.
pub fn memory_mib(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let per_unit: f64 = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "K" => 1.0 / 1024.0,
        "M" => 1.0,
        "G" => 1024.0,
        "T" => 1024.0 * 1024.0,
        "" => {
            return Err(format!(
                "`{text}` has no unit; write megabytes or gigabytes, as in `512M` or `4G`"
            ));
        }
        _ => return Err(format!("unknown memory unit in `{text}`; use K, M, G or T")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not an amount of memory such as `512M` or `4G`"))?;
    let mib = (value * per_unit).ceil();
    if !(1.0..1e15).contains(&mib) {
        return Err(format!("`{text}` is not a usable amount of memory"));
    }
    Ok(mib as u64)
}

/// `90s`, `30m`, `2h`, `1h30m`, `1d`, `H:MM:SS`, `D-HH:MM:SS` as seconds.
pub fn seconds(text: &str) -> Result<u64, String> {
    let total = if text.contains(':') {
        clock_seconds(text)
    } else {
        unit_seconds(text)
    }
    .ok_or_else(|| {
        format!(
            "`{text}` is not a time limit; write `90s`, `30m`, `2h`, `1h30m`, `1d` or `2:00:00`"
        )
    })?;
    if total == 0 {
        return Err(format!("the time limit `{text}` is zero"));
    }
    Ok(total)
}

fn unit_seconds(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        };
        total = total.checked_add(number.parse::<u64>().ok()?.checked_mul(scale)?)?;
        rest = next;
    }
    Some(total)
}

fn clock_seconds(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once('-') {
        Some((d, c)) => (d.parse::<u64>().ok()?, c),
        None => (0, text),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts[..] else { return None };
    if m >= 60 || s >= 60 {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_takes_binary_units_and_rounds_up() {
        assert_eq!(memory_mib("512M"), Ok(512));
        assert_eq!(memory_mib("4G"), Ok(4096));
        assert_eq!(memory_mib("1.5GB"), Ok(1536));
        assert_eq!(memory_mib("2gib"), Ok(2048));
        assert_eq!(memory_mib("100K"), Ok(1));
        assert!(memory_mib("4096").unwrap_err().contains("no unit"));
        assert!(
            memory_mib("4Q")
                .unwrap_err()
                .contains("unknown memory unit")
        );
        assert!(memory_mib("0M").is_err());
        assert!(memory_mib("G").is_err());
    }

    #[test]
    fn time_takes_units_and_clock_forms() {
        assert_eq!(seconds("90s"), Ok(90));
        assert_eq!(seconds("30m"), Ok(1800));
        assert_eq!(seconds("1h30m"), Ok(5400));
        assert_eq!(seconds("1d"), Ok(86_400));
        assert_eq!(seconds("2:00:00"), Ok(7200));
        assert_eq!(seconds("1-02:03:04"), Ok(93_784));
        assert!(seconds("60").is_err(), "a bare number has no unit");
        assert!(seconds("1:70:00").is_err());
        assert!(seconds("0s").unwrap_err().contains("zero"));
        assert!(seconds("2 hours").is_err());
    }
}
