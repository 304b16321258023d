//! Case-insensitive access to a source's string options, with Spark's parsing rules for
//! booleans, numbers and durations.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// A source's options, looked up case-insensitively (Spark's `CaseInsensitiveStringMap`).
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    by_lower_name: BTreeMap<String, String>,
}

impl SourceOptions {
    /// Wraps `options` (keys are compared case-insensitively).
    pub fn new(options: &BTreeMap<String, String>) -> SourceOptions {
        SourceOptions {
            by_lower_name: options
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        }
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.by_lower_name
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A boolean option (`true`/`false`, any case).
    pub fn bool(&self, name: &str, default: bool) -> Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::option(
                    name,
                    format!("'{v}' is not a boolean; use true or false"),
                )),
            },
        }
    }

    /// An integer option that must be at least `min`.
    pub fn int(&self, name: &str, min: i64) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= min => Ok(Some(n)),
                Ok(n) => Err(Error::option(
                    name,
                    format!("{n} is out of range: it must be at least {min}"),
                )),
                Err(_) => Err(Error::option(name, format!("'{v}' is not an integer"))),
            },
        }
    }

    /// A duration option in Spark's `timeStringAsMs` syntax (`500ms`, `10s`, `5m`, `2h`,
    /// `7d`, `100us`; a bare number is milliseconds), returned in milliseconds.
    pub fn duration_ms(&self, name: &str) -> Result<Option<i64>> {
        self.get(name)
            .map(|v| parse_duration_ms(name, v))
            .transpose()
    }

    /// A duration option in Spark's `timeStringAsSec` syntax (a bare number is seconds),
    /// returned in whole seconds (truncated).
    pub fn duration_secs(&self, name: &str) -> Result<Option<i64>> {
        self.get(name)
            .map(|v| parse_duration(name, v, 1000.0).map(|ms| ms / 1000))
            .transpose()
    }
}

/// Parses a Spark time string into milliseconds (a bare number is milliseconds).
pub(crate) fn parse_duration_ms(name: &str, text: &str) -> Result<i64> {
    parse_duration(name, text, 1.0)
}

/// Parses a Spark time string into milliseconds, a bare number counting `bare_unit_ms`.
fn parse_duration(name: &str, text: &str, bare_unit_ms: f64) -> Result<i64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::option(
            name,
            format!(
                "'{text}' is not a duration; use a number with a unit such as 500ms, 10s, 5m, 2h or 7d"
            ),
        )
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    let ms_per_unit: f64 = match unit.trim() {
        "" => bare_unit_ms,
        "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(bad()),
    };
    Ok((n as f64 * ms_per_unit) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_ignores_key_case() {
        let mut m = BTreeMap::new();
        m.insert("MaxFileAge".to_string(), "7d".to_string());
        let o = SourceOptions::new(&m);
        assert_eq!(o.duration_ms("maxfileage").unwrap(), Some(7 * 86_400_000));
        assert_eq!(parse_duration_ms("x", "1500").unwrap(), 1500);
        assert_eq!(parse_duration_ms("x", "2m").unwrap(), 120_000);
        assert!(parse_duration_ms("x", "2 weeks").is_err());
        let m = BTreeMap::from([("rampUpTime".to_string(), "5".to_string())]);
        assert_eq!(
            SourceOptions::new(&m).duration_secs("rampUpTime").unwrap(),
            Some(5)
        );
    }
}
