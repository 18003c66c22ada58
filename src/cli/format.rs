//! Text formats zkCli prints: StatPrinter lines, `java.util.Date.toString()`, jute's
//! `Id.toString()`, permission strings, ACL parsing, and the quota StatsTrack strings.

use crate::jute::records::{Acl, Id, Stat};
use std::collections::BTreeMap;

/// `StatPrinter.print`.
pub fn stat_lines(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Broken-down local time: (year, month 0-11, day, hour, min, sec, weekday 0=Sun, zone name).
type Tm = (i64, usize, u32, u32, u32, u32, usize, String);

#[cfg(unix)]
fn local_tm(secs: i64) -> Option<Tm> {
    use std::ffi::CStr;
    use std::os::raw::{c_char, c_int, c_long};
    // glibc's and musl's `struct tm` (tm_gmtoff and tm_zone trail the nine ints).
    #[repr(C)]
    struct CTm {
        tm_sec: c_int,
        tm_min: c_int,
        tm_hour: c_int,
        tm_mday: c_int,
        tm_mon: c_int,
        tm_year: c_int,
        tm_wday: c_int,
        tm_yday: c_int,
        tm_isdst: c_int,
        tm_gmtoff: c_long,
        tm_zone: *const c_char,
    }
    unsafe extern "C" {
        fn localtime_r(t: *const i64, out: *mut CTm) -> *mut CTm;
        fn tzset();
    }
    if !cfg!(target_pointer_width = "64") {
        return None;
    }
    let mut tm = CTm {
        tm_sec: 0,
        tm_min: 0,
        tm_hour: 0,
        tm_mday: 0,
        tm_mon: 0,
        tm_year: 0,
        tm_wday: 0,
        tm_yday: 0,
        tm_isdst: 0,
        tm_gmtoff: 0,
        tm_zone: std::ptr::null(),
    };
    // SAFETY: `tm` is a properly laid out, writable struct tm; localtime_r only writes into it
    // and returns either it or null. tm_zone points at static storage owned by libc.
    let zone = unsafe {
        tzset();
        if localtime_r(&secs, &mut tm).is_null() {
            return None;
        }
        if tm.tm_zone.is_null() {
            String::new()
        } else {
            CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned()
        }
    };
    let zone = if zone.is_empty() { "UTC".to_string() } else { zone };
    Some((
        tm.tm_year as i64 + 1900,
        tm.tm_mon.clamp(0, 11) as usize,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
        tm.tm_wday.clamp(0, 6) as usize,
        zone,
    ))
}

#[cfg(not(unix))]
fn local_tm(_secs: i64) -> Option<Tm> {
    None
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn utc_tm(secs: i64) -> Tm {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wday = (days + 4).rem_euclid(7) as usize;
    (y, (m - 1) as usize, d, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32, wday, "UTC".into())
}

/// `new Date(millis).toString()`: `Wed Nov 25 13:52:29 UTC 2026` in the local time zone.
pub fn java_date(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (y, mon, d, h, mi, s, wd, zone) = local_tm(secs).unwrap_or_else(|| utc_tm(secs));
    format!("{} {} {:02} {:02}:{:02}:{:02} {} {}", DAYS[wd], MONTHS[mon], d, h, mi, s, zone, y)
}

/// jute's ToStringOutputArchive string escaping.
fn csv_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// `Id.toString()` (a jute record printed by ToStringOutputArchive): `'world,'anyone` + newline.
pub fn id_to_string(id: &Id) -> String {
    format!("{},{}\n", csv_string(&id.scheme), csv_string(&id.id))
}

/// `ZKUtil.getPermString`: the letters in `cdrwa` order.
pub fn perm_string(perms: i32) -> String {
    let mut p = String::new();
    for (bit, c) in [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')] {
        if perms & bit != 0 {
            p.push(c);
        }
    }
    p
}

/// `AclParser.parse`: `scheme:id:perm[,...]`; bad entries and unknown permission letters are
/// reported (as zkCli does, on stderr) through `warn` and skipped.
pub fn parse_acl(s: &str, warn: &mut dyn FnMut(String)) -> Vec<Acl> {
    let mut acl = Vec::new();
    for a in java_split(s, ',') {
        let (first, last) = (a.find(':'), a.rfind(':'));
        let (Some(first), Some(last)) = (first, last) else {
            warn(format!("{a} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            warn(format!("{a} does not have the form scheme:id:perm"));
            continue;
        }
        let mut perms = 0;
        for c in a[last + 1..].chars() {
            match c {
                'r' => perms |= 1,
                'w' => perms |= 2,
                'c' => perms |= 4,
                'd' => perms |= 8,
                'a' => perms |= 16,
                c => warn(format!("Unknown perm type: {c}")),
            }
        }
        acl.push(Acl { perms, id: Id { scheme: a[..first].to_string(), id: a[first + 1..last].to_string() } });
    }
    acl
}

/// Java's `String.split(String)` for a one-character separator: trailing empty strings are
/// dropped (and "" splits into [""]).
pub fn java_split(s: &str, sep: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut v: Vec<&str> = s.split(sep).collect();
    while v.len() > 1 && v.last() == Some(&"") {
        v.pop();
    }
    if v.len() == 1 && v[0].is_empty() {
        // "," splits into an empty array in Java.
        v.clear();
    }
    v
}

/// `org.apache.zookeeper.StatsTrack`: the quota limits/usage string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

pub const COUNT: &str = "count";
pub const BYTES: &str = "bytes";
pub const COUNT_HARD: &str = "countHardLimit";
pub const BYTES_HARD: &str = "byteHardLimit";

impl StatsTrack {
    pub fn new() -> StatsTrack {
        StatsTrack::default()
    }

    /// Parses `count=5,bytes=100=;byteHardLimit=-1;...`: pieces split on `[,;]+`, each on `=`;
    /// an empty value means -1.
    pub fn parse(s: &str) -> Result<StatsTrack, String> {
        let mut t = StatsTrack::new();
        if s.is_empty() {
            return Ok(t);
        }
        for pair in s.split([',', ';']).filter(|p| !p.is_empty()) {
            let kv = java_split(pair, '=');
            let key = kv.first().copied().unwrap_or("");
            let val = kv.get(1).copied().unwrap_or("");
            let v = if val.is_empty() {
                -1
            } else {
                val.parse::<i64>().map_err(|_| format!("For input string: \"{val}\""))?
            };
            t.stats.insert(key.to_string(), v);
        }
        Ok(t)
    }

    pub fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, v: i64) {
        self.stats.insert(key.to_string(), v);
    }
}

impl std::fmt::Display for StatsTrack {
    /// `count=N,bytes=M` first; any other keys follow a stray `=`, sorted, each as `;key=value`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.get(COUNT), self.get(BYTES))?;
        let extra: Vec<(&String, &i64)> = self.stats.iter().filter(|(k, _)| *k != COUNT && *k != BYTES).collect();
        if !extra.is_empty() {
            f.write_str("=")?;
            for (k, v) in extra {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        let (y, m, d, h, mi, s, wd, _) = utc_tm(0);
        assert_eq!((y, m, d, h, mi, s, wd), (1970, 0, 1, 0, 0, 0, 4));
        let (y, m, d, h, mi, s, wd, _) = utc_tm(1_795_614_749);
        assert_eq!((y, m, d, h, mi, s, wd), (2026, 10, 25, 13, 52, 29, 3));
    }

    #[test]
    fn ids_and_perms() {
        let id = Id { scheme: "world".into(), id: "anyone".into() };
        assert_eq!(id_to_string(&id), "'world,'anyone\n");
        assert_eq!(perm_string(31), "cdrwa");
        assert_eq!(perm_string(1 | 16), "ra");
        let mut warnings = Vec::new();
        let acl = parse_acl("world:anyone:rx,bogus,digest:u:h=:cdrwa", &mut |w| warnings.push(w));
        assert_eq!(warnings, vec!["Unknown perm type: x", "bogus does not have the form scheme:id:perm"]);
        assert_eq!(acl.len(), 2);
        assert_eq!(acl[0].perms, 1);
        assert_eq!(acl[1].id.id, "u:h=");
    }

    #[test]
    fn stats_track_strings() {
        let mut q = StatsTrack::new();
        q.set(COUNT, 5);
        q.set(BYTES, -1);
        q.set(COUNT_HARD, -1);
        q.set(BYTES_HARD, -1);
        assert_eq!(q.to_string(), "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1");
        let p = StatsTrack::parse("count=5,bytes=100=;byteHardLimit=-1;countHardLimit=-1").unwrap();
        assert_eq!(p.get(BYTES), 100);
        assert_eq!(p.to_string(), "count=5,bytes=100=;byteHardLimit=-1;countHardLimit=-1");
        let mut s = StatsTrack::new();
        s.set(COUNT, 0);
        s.set(BYTES, 0);
        assert_eq!(s.to_string(), "count=0,bytes=0");
        assert_eq!(StatsTrack::parse("").unwrap().to_string(), "count=-1,bytes=-1");
    }
}
