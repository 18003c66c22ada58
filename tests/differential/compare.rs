//! Step-by-step comparison of two recorded runs.

use crate::run::{FrameRec, OpRecord, Outcome};

#[derive(Default, Debug)]
pub struct Summary {
    pub steps: usize,
    pub requests_sent: usize,
    pub replies_compared: usize,
    pub events_compared: usize,
}

/// What is compared for one step: frames in arrival order, or (for steps that delete several
/// ephemerals in hash order) per session its replies in order and its notifications sorted.
fn canonical(r: &OpRecord) -> Vec<(usize, String)> {
    if !r.unordered_events {
        return r.frames.iter().map(|f| (f.session, f.norm.clone())).collect();
    }
    let mut sessions: Vec<usize> = r.frames.iter().map(|f| f.session).collect();
    sessions.sort();
    sessions.dedup();
    let mut out = Vec::new();
    for s in sessions {
        let mut events: Vec<String> = Vec::new();
        for f in r.frames.iter().filter(|f| f.session == s) {
            if f.is_event {
                events.push(f.norm.clone());
            } else {
                out.push((s, f.norm.clone()));
            }
        }
        events.sort();
        out.extend(events.into_iter().map(|e| (s, format!("{e} [unordered]"))));
    }
    out
}

fn show_frames(frames: &[FrameRec], raw: bool) -> String {
    let mut s = String::new();
    for f in frames {
        let text = if raw { &f.raw } else { &f.norm };
        s.push_str(&format!("      S{} {}\n", f.session, text));
    }
    if frames.is_empty() {
        s.push_str("      (nothing)\n");
    }
    s
}

fn show_step(r: &OpRecord) -> String {
    let who = if r.session == usize::MAX { "all".to_string() } else { format!("S{}", r.session) };
    format!("#{} {who}: {}", r.index, r.desc)
}

/// Compares step by step. Fails at the first divergence; with `keep_going` > 1 it reports up to
/// that many divergent steps (later ones may be consequences of earlier ones), stopping when the
/// requests themselves differ.
pub fn compare(a: &Outcome, b: &Outcome, la: &str, lb: &str, keep_going: usize) -> Result<Summary, String> {
    let mut sum = Summary { requests_sent: a.requests_sent, ..Summary::default() };
    let n = a.records.len().max(b.records.len());
    let mut reports = Vec::new();
    for i in 0..n {
        let (ra, rb) = (a.records.get(i), b.records.get(i));
        let mismatch = match (ra, rb) {
            (Some(x), Some(y)) => {
                x.desc != y.desc || !x.problems.is_empty() || !y.problems.is_empty() || canonical(x) != canonical(y)
            }
            _ => true,
        };
        if mismatch {
            reports.push(report(a, b, la, lb, i));
            let same_request = matches!((ra, rb), (Some(x), Some(y)) if x.desc == y.desc);
            if reports.len() >= keep_going.max(1) || !same_request {
                break;
            }
            continue;
        }
        let r = ra.unwrap();
        sum.steps += 1;
        sum.events_compared += r.frames.iter().filter(|f| f.is_event).count();
        sum.replies_compared += r.frames.iter().filter(|f| !f.is_event).count();
    }
    if !reports.is_empty() {
        return Err(format!("{} divergence(s) reported\n{}", reports.len(), reports.join("\n")));
    }
    for (label, o) in [(la, a), (lb, b)] {
        if let Some(why) = &o.aborted {
            return Err(format!("{label} run stopped early: {why}"));
        }
        if !o.time_order_problems.is_empty() {
            return Err(format!("{label}: times go backwards: {:?}", &o.time_order_problems[..o.time_order_problems.len().min(5)]));
        }
    }
    Ok(sum)
}

fn report(a: &Outcome, b: &Outcome, la: &str, lb: &str, i: usize) -> String {
    let mut s = String::new();
    s.push_str(&format!("\n==== DIVERGENCE at step #{i} ====\n"));
    let from = i.saturating_sub(10);
    s.push_str(&format!("previous steps (as seen by {la}):\n"));
    for r in &a.records[from.min(a.records.len())..i.min(a.records.len())] {
        s.push_str(&format!("  {}\n", show_step(r)));
        s.push_str(&show_frames(&r.frames, false));
    }
    for (label, o) in [(la, a), (lb, b)] {
        match o.records.get(i) {
            Some(r) => {
                s.push_str(&format!("\n--- {label}: {}\n", show_step(r)));
                s.push_str("    normalised:\n");
                s.push_str(&show_frames(&r.frames, false));
                s.push_str("    raw:\n");
                s.push_str(&show_frames(&r.frames, true));
                for p in &r.problems {
                    s.push_str(&format!("    SELF-CONSISTENCY PROBLEM: {p}\n"));
                }
                if r.unordered_events {
                    s.push_str("    (notifications of this step are compared as a multiset per session)\n");
                }
            }
            None => s.push_str(&format!(
                "\n--- {label}: no step #{i} (run ended after {} steps{})\n",
                o.records.len(),
                o.aborted.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
            )),
        }
    }
    if let (Some(x), Some(y)) = (a.records.get(i), b.records.get(i)) {
        let (cx, cy) = (canonical(x), canonical(y));
        if let Some(k) = (0..cx.len().max(cy.len())).find(|&k| cx.get(k) != cy.get(k)) {
            s.push_str(&format!(
                "\nfirst differing frame (#{k}):\n  {la}: {:?}\n  {lb}: {:?}\n",
                cx.get(k),
                cy.get(k)
            ));
        }
        if x.desc != y.desc {
            s.push_str("\nthe requests differ: the generator saw different replies earlier\n");
        }
    }
    s
}
