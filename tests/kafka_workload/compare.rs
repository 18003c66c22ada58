//! Compares two transcripts entry by entry and reports the first divergence.

use crate::harness::{Entry, Mode};

/// The compared form: `Loose` entries dropped; each run of consecutive `Unordered` entries of one
/// session in one step sorted. Keeps the index of every entry in the original log.
pub fn canonical(log: &[Entry]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while i < log.len() {
        let e = &log[i];
        match e.mode {
            Mode::Loose => i += 1,
            Mode::Exact => {
                out.push((i, key(e)));
                i += 1;
            }
            Mode::Unordered => {
                let mut j = i;
                let mut run: Vec<(usize, String)> = Vec::new();
                while j < log.len()
                    && (log[j].mode == Mode::Loose
                        || (log[j].mode == Mode::Unordered && log[j].step == e.step && log[j].who == e.who))
                {
                    if log[j].mode == Mode::Unordered {
                        run.push((j, format!("{} [order free]", key(&log[j]))));
                    }
                    j += 1;
                }
                run.sort_by(|a, b| a.1.cmp(&b.1));
                out.extend(run);
                i = j;
            }
        }
    }
    out
}

fn key(e: &Entry) -> String {
    format!("[{}] {}: {}", e.step, e.who, e.text)
}

fn show(log: &[Entry], idx: usize, with_raw: bool) -> String {
    let e = &log[idx];
    let mut s = format!("  [{}] {}: {}\n", e.step, e.who, e.text);
    if with_raw && !e.raw.is_empty() {
        s.push_str(&format!("        raw: {}\n", e.raw));
    }
    s
}

pub struct Summary {
    pub entries: usize,
    pub replies: usize,
    pub events: usize,
}

/// Ok(summary) if the compared forms are equal; Err(report of the first divergence).
pub fn compare(a: &[Entry], b: &[Entry], la: &str, lb: &str) -> Result<Summary, String> {
    let (ca, cb) = (canonical(a), canonical(b));
    let n = ca.len().max(cb.len());
    let Some(k) = (0..n).find(|&k| ca.get(k).map(|x| &x.1) != cb.get(k).map(|x| &x.1)) else {
        let events = ca.iter().filter(|(i, _)| a[*i].text.starts_with("EVENT")).count();
        let replies = ca.iter().filter(|(i, _)| a[*i].text.contains(" -> err=")).count();
        return Ok(Summary { entries: ca.len(), replies, events });
    };
    let mut s = String::new();
    s.push_str(&format!("\n==== FIRST DIVERGENCE (compared entry #{k} of {}/{}) ====\n", ca.len(), cb.len()));
    s.push_str(&format!("preceding entries (identical on both; {la}'s raw shown):\n"));
    for &(i, _) in &ca[k.saturating_sub(12)..k.min(ca.len())] {
        s.push_str(&show(a, i, false));
    }
    for (label, log, c) in [(la, a, &ca), (lb, b, &cb)] {
        s.push_str(&format!("\n--- {label}:\n"));
        match c.get(k) {
            Some(&(i, _)) => {
                s.push_str(&show(log, i, true));
                s.push_str("    then:\n");
                for &(j, _) in c.iter().skip(k + 1).take(6) {
                    s.push_str(&show(log, j, false));
                }
            }
            None => s.push_str("  (transcript ended)\n"),
        }
    }
    Err(s)
}
