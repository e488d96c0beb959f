//! A CronJob's schedule as robfig/cron v3's ParseStandard reads it (kube validates with it): five
//! fields (minute, hour, day of month, month, day of week) of lists of `*`, `?`, numbers, names,
//! ranges and steps; the `@yearly`..`@hourly` descriptors and `@every <duration>`; an optional
//! `TZ=`/`CRON_TZ=` prefix. Errors carry robfig's wording, which kube returns to clients.
//! [`Schedule::next`] tells when it fires next, as robfig's `Next` does.

use std::time::Duration;

mod next;

pub use next::load_location;

/// A parsed schedule: the bits of each field (robfig's SpecSchedule), or a fixed interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Fields {
        minute: u64,
        hour: u64,
        day_of_month: u64,
        month: u64,
        day_of_week: u64,
        /// The `TZ=` prefix's zone, if any.
        time_zone: Option<String>,
    },
    Every(Duration),
}

/// robfig's marker bit for a field given as `*` or `?`.
const STAR_BIT: u64 = 1 << 63;

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DAYS_OF_MONTH: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DAYS_OF_WEEK: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// ParseStandard. `zone_exists` answers whether a `TZ=` zone is in the tz database.
pub fn parse_standard(spec: &str, zone_exists: impl Fn(&str) -> bool) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    let mut time_zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or_default();
        let end = spec.find(' ').unwrap_or(spec.len());
        let zone = &spec[eq + 1..end];
        if !zone_exists(zone) {
            return Err(format!(
                "provided bad location {zone}: unknown time zone {zone}"
            ));
        }
        time_zone = Some(zone.to_owned());
        spec = spec[end..].trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec, time_zone);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Schedule::Fields {
        minute: field(fields[0], &MINUTES)?,
        hour: field(fields[1], &HOURS)?,
        day_of_month: field(fields[2], &DAYS_OF_MONTH)?,
        month: field(fields[3], &MONTHS)?,
        day_of_week: field(fields[4], &DAYS_OF_WEEK)?,
        time_zone,
    })
}

fn parse_descriptor(descriptor: &str, time_zone: Option<String>) -> Result<Schedule, String> {
    let all = |b: &Bounds| bits(b.min, b.max, 1) | STAR_BIT;
    let fields = |minute, hour, day_of_month, month, day_of_week| Schedule::Fields {
        minute,
        hour,
        day_of_month,
        month,
        day_of_week,
        time_zone: time_zone.clone(),
    };
    let (first_dom, first_month) = (1 << DAYS_OF_MONTH.min, 1 << MONTHS.min);
    match descriptor {
        "@yearly" | "@annually" => Ok(fields(1, 1, first_dom, first_month, all(&DAYS_OF_WEEK))),
        "@monthly" => Ok(fields(1, 1, first_dom, all(&MONTHS), all(&DAYS_OF_WEEK))),
        "@weekly" => Ok(fields(1, 1, all(&DAYS_OF_MONTH), all(&MONTHS), 1)),
        "@daily" | "@midnight" => Ok(fields(
            1,
            1,
            all(&DAYS_OF_MONTH),
            all(&MONTHS),
            all(&DAYS_OF_WEEK),
        )),
        "@hourly" => Ok(fields(
            1,
            all(&HOURS),
            all(&DAYS_OF_MONTH),
            all(&MONTHS),
            all(&DAYS_OF_WEEK),
        )),
        _ => match descriptor.strip_prefix("@every ") {
            Some(duration) => parse_go_duration(duration)
                .map(Schedule::Every)
                .map_err(|err| format!("failed to parse duration {descriptor}: {err}")),
            None => Err(format!("unrecognized descriptor: {descriptor}")),
        },
    }
}

/// getField: a comma-separated list of ranges (empty items skipped, as Go's FieldsFunc).
fn field(field: &str, bounds: &Bounds) -> Result<u64, String> {
    let mut all = 0;
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        all |= range(expr, bounds)?;
    }
    Ok(all)
}

/// getRange: `*`, `?`, `n`, `a-b`, each with an optional `/step`.
fn range(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (start, end, extra) = (bounds.min, bounds.max, STAR_BIT);
    } else {
        start = int_or_name(low_and_high[0], bounds)?;
        extra = 0;
        end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], bounds)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = go_uint(range_and_step[1])?;
            if low_and_high.len() == 1 {
                end = bounds.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < bounds.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            bounds.min
        ));
    }
    if end > bounds.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            bounds.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn int_or_name(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    match bounds.names.iter().find(|(name, _)| *name == lower) {
        Some((_, value)) => Ok(*value),
        None => go_uint(expr),
    }
}

/// mustParseInt: Go's strconv.Atoi, then no negatives.
fn go_uint(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let syntax_ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let number: i64 = match expr.parse() {
        Ok(number) if syntax_ok => number,
        _ => {
            let reason = if syntax_ok {
                "value out of range"
            } else {
                "invalid syntax"
            };
            let quoted = peapod_api::validation::go_quote(expr);
            return Err(format!(
                "failed to parse int from {expr}: strconv.Atoi: parsing {quoted}: {reason}"
            ));
        }
    };
    u64::try_from(number).map_err(|_| format!("negative number ({number}) not allowed: {expr}"))
}

/// getBits: every `step`th value from `min` to `max`.
fn bits(min: u64, max: u64, step: u64) -> u64 {
    (min..=max)
        .step_by(step as usize)
        .fold(0, |bits, i| bits | 1 << i)
}

/// Go's time.ParseDuration: a signed sequence of decimal numbers with units (`1h30m`, `1.5s`).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let quoted = peapod_api::validation::go_quote(text);
    let invalid = || format!("time: invalid duration {quoted}");
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned == "0" {
        return Ok(Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err(invalid());
    }
    let mut rest = unsigned;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "" => return Err(format!("time: missing unit in duration {quoted}")),
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                let unit = peapod_api::validation::go_quote(other);
                return Err(format!("time: unknown unit {unit} in duration {quoted}"));
            }
        };
        nanos += number.parse::<f64>().map_err(|_| invalid())? * scale;
    }
    if nanos > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(nanos as u64))
}
