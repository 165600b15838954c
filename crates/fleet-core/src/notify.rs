//! Which alerts deserve a desktop notification, and when an unacknowledged critical alert
//! escalates. Pure logic over the list of open alerts (the app delivers the notices), so
//! "notify once, escalate once, never flood the desktop" is unit-tested here rather than
//! in a window.

use fleet_model::{Alert, Severity};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// At most this many notices per [`WINDOW_MS`]: fifty notifications stacked on the desktop
/// help nobody, and a busy fleet opens alerts every second. What does not fit waits and is
/// folded into one summary.
const MAX_PER_WINDOW: usize = 3;
/// The rate-limit window (ms).
const WINDOW_MS: i64 = 10_000;

/// Why a notice was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeKind {
    /// A warning or critical alert opened.
    Raised,
    /// A critical alert stayed unacknowledged for `escalate_after_s`.
    Escalated,
    /// Several at once (or what was already open at start-up), folded into one.
    Summary,
}

/// One desktop notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Why.
    pub kind: NoticeKind,
    /// The most severe alert it is about.
    pub severity: Severity,
    /// Notification title.
    pub title: String,
    /// Notification body.
    pub body: String,
    /// The alerts it covers.
    pub alert_ids: Vec<String>,
}

impl Notice {
    /// The title and body as the notification daemon must receive them: freedesktop
    /// daemons (dunst, GNOME, KDE) interpret a subset of HTML in notifications, and an
    /// upstream alert's message is untrusted text, so `& < > " '` are escaped and shown
    /// literally (the notice itself, kept for `recent_notifications`, stays unescaped).
    pub fn for_daemon(&self) -> (String, String) {
        (escape_markup(&self.title), escape_markup(&self.body))
    }
}

/// Escapes the characters notification markup gives a meaning to.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Decides the notices; one per desktop, fed the open alerts every second or so.
#[derive(Debug)]
pub struct Notifier {
    escalate_after_ms: i64,
    notified: HashSet<String>,
    escalated: HashSet<String>,
    primed: bool,
    /// Raised or escalated but not shown yet (the window's budget was spent).
    pending_raised: Vec<Alert>,
    pending_escalated: Vec<Alert>,
    window_start: i64,
    shown_in_window: usize,
}

impl Notifier {
    /// A notifier escalating unacknowledged critical alerts after `escalate_after_s`.
    pub fn new(escalate_after_s: f64) -> Self {
        Notifier {
            escalate_after_ms: (escalate_after_s * 1000.0).round() as i64,
            notified: HashSet::new(),
            escalated: HashSet::new(),
            primed: false,
            pending_raised: Vec::new(),
            pending_escalated: Vec::new(),
            window_start: i64::MIN,
            shown_in_window: 0,
        }
    }

    /// The notices to show now, given every open alert (any severity; info is ignored).
    /// The first call only summarises what is already open, so starting the app on a busy
    /// fleet gives one notification, not hundreds; after that at most [`MAX_PER_WINDOW`]
    /// notices per [`WINDOW_MS`], and a burst that does not fit is one summary that uses up
    /// the window (so a flooding fleet notifies once per window).
    pub fn step(&mut self, open: &[Alert], now_ms: i64) -> Vec<Notice> {
        let relevant: Vec<&Alert> = open
            .iter()
            .filter(|a| a.severity >= Severity::Warning)
            .collect();
        let ids: HashSet<&str> = relevant.iter().map(|a| a.id.as_str()).collect();
        // Acknowledged or resolved alerts leave the sets, so they stay as small as the feed.
        self.notified.retain(|id| ids.contains(id.as_str()));
        self.escalated.retain(|id| ids.contains(id.as_str()));
        let mut raised = Vec::new();
        let mut escalated = Vec::new();
        for a in relevant {
            if self.notified.insert(a.id.clone()) {
                raised.push(a);
            }
            if a.is_escalated(self.escalate_after_ms, now_ms) && self.escalated.insert(a.id.clone())
            {
                escalated.push(a);
            }
        }
        let first = !self.primed;
        self.primed = true;
        // Waiting notices about alerts acknowledged or resolved meanwhile are dropped.
        self.pending_raised.retain(|a| ids.contains(a.id.as_str()));
        self.pending_escalated
            .retain(|a| ids.contains(a.id.as_str()));
        self.pending_raised.extend(raised.into_iter().cloned());
        self.pending_escalated
            .extend(escalated.into_iter().cloned());
        if self.pending_raised.is_empty() && self.pending_escalated.is_empty() {
            return Vec::new();
        }
        // A clock stepping back starts a new window rather than stalling notices.
        if now_ms.saturating_sub(self.window_start) >= WINDOW_MS || now_ms < self.window_start {
            self.window_start = now_ms;
            self.shown_in_window = 0;
        }
        let budget = MAX_PER_WINDOW.saturating_sub(self.shown_in_window);
        if budget == 0 {
            return Vec::new();
        }
        let raised = std::mem::take(&mut self.pending_raised);
        let escalated = std::mem::take(&mut self.pending_escalated);
        if first {
            self.shown_in_window += 1;
            return vec![summary(&raised, &escalated, true)];
        }
        if raised.len() + escalated.len() > budget {
            self.shown_in_window = MAX_PER_WINDOW;
            return vec![summary(&raised, &escalated, false)];
        }
        self.shown_in_window += raised.len() + escalated.len();
        let mut out: Vec<Notice> = raised
            .iter()
            .map(|a| single(a, NoticeKind::Raised))
            .collect();
        out.extend(escalated.iter().map(|a| single(a, NoticeKind::Escalated)));
        out
    }
}

fn single(a: &Alert, kind: NoticeKind) -> Notice {
    let title = match kind {
        NoticeKind::Escalated => format!(
            "ESCALATED: {} on {} still unacknowledged",
            a.rule,
            a.vehicle_label()
        ),
        _ => format!(
            "{}: {} on {}",
            a.severity.as_str(),
            a.rule,
            a.vehicle_label()
        ),
    };
    Notice {
        kind,
        severity: a.severity,
        title,
        body: a.message.clone(),
        alert_ids: vec![a.id.clone()],
    }
}

fn summary(raised: &[Alert], escalated: &[Alert], at_start: bool) -> Notice {
    let critical = raised
        .iter()
        .filter(|a| a.severity == Severity::Critical)
        .count();
    let mut parts = Vec::new();
    if !raised.is_empty() {
        let what = if at_start { "open" } else { "new" };
        parts.push(format!(
            "{} {what} alert{} ({critical} critical, {} warning)",
            raised.len(),
            if raised.len() == 1 { "" } else { "s" },
            raised.len() - critical
        ));
    }
    if !escalated.is_empty() {
        parts.push(format!(
            "{} critical unacknowledged past the escalation time",
            escalated.len()
        ));
    }
    let severity = raised
        .iter()
        .chain(escalated)
        .map(|a| a.severity)
        .max()
        .unwrap_or(Severity::Warning);
    let mut ids: Vec<String> = raised.iter().map(|a| a.id.clone()).collect();
    ids.extend(escalated.iter().map(|a| a.id.clone()));
    ids.dedup();
    Notice {
        kind: NoticeKind::Summary,
        severity,
        title: if escalated.is_empty() {
            "fleetdash: alerts need attention".into()
        } else {
            "fleetdash: ESCALATED alerts".into()
        },
        body: parts.join("; "),
        alert_ids: ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, severity: Severity, ts_ms: i64) -> Alert {
        Alert::open(
            id.into(),
            format!("car-{id}"),
            "overspeed",
            severity,
            "m".into(),
            ts_ms,
        )
    }

    #[test]
    fn start_up_is_one_summary_then_each_new_alert_once() {
        let mut n = Notifier::new(60.0);
        let open = vec![
            alert("a", Severity::Warning, 0),
            alert("b", Severity::Critical, 0),
        ];
        let first = n.step(&open, 1_000);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].kind, NoticeKind::Summary);
        assert_eq!(first[0].severity, Severity::Critical);
        assert!(
            first[0]
                .body
                .contains("2 open alerts (1 critical, 1 warning)"),
            "{first:?}"
        );
        assert!(
            n.step(&open, 2_000).is_empty(),
            "nothing new, nothing shown"
        );
        let mut more = open.clone();
        more.push(alert("c", Severity::Warning, 1_500));
        let next = n.step(&more, 3_000);
        assert_eq!(next.len(), 1);
        assert_eq!(
            (next[0].kind, next[0].alert_ids.clone()),
            (NoticeKind::Raised, vec!["c".to_string()])
        );
        assert!(n.step(&more, 4_000).is_empty());
    }

    #[test]
    fn info_is_never_notified() {
        let mut n = Notifier::new(60.0);
        assert!(n.step(&[], 0).is_empty());
        assert!(
            n.step(&[alert("i", Severity::Info, 0)], 10_000_000)
                .is_empty()
        );
    }

    #[test]
    fn critical_escalates_once_at_exactly_the_threshold_unless_acknowledged() {
        let mut n = Notifier::new(60.0);
        n.step(&[], 0);
        let crit = vec![alert("x", Severity::Critical, 10_000)];
        assert_eq!(n.step(&crit, 10_000)[0].kind, NoticeKind::Raised);
        assert!(n.step(&crit, 69_999).is_empty(), "1 ms early");
        let esc = n.step(&crit, 70_000);
        assert_eq!(esc.len(), 1);
        assert_eq!(esc[0].kind, NoticeKind::Escalated);
        assert!(esc[0].title.starts_with("ESCALATED"));
        assert!(n.step(&crit, 200_000).is_empty(), "escalates once");
        // acknowledged (no longer open): forgotten, no escalation
        let mut n = Notifier::new(60.0);
        n.step(&[], 0);
        let warn = vec![alert("w", Severity::Warning, 0)];
        n.step(&warn, 0);
        assert!(
            n.step(&warn, 1_000_000).is_empty(),
            "warnings do not escalate"
        );
        assert!(n.step(&[], 1_000_001).is_empty());
    }

    #[test]
    fn a_burst_is_folded_into_one_summary() {
        let mut n = Notifier::new(60.0);
        n.step(&[], 0);
        let burst: Vec<Alert> = (0..10)
            .map(|i| alert(&i.to_string(), Severity::Warning, 5))
            .collect();
        let out = n.step(&burst, 10);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, NoticeKind::Summary);
        assert_eq!(out[0].alert_ids.len(), 10);
        assert!(out[0].body.starts_with("10 new alerts"), "{}", out[0].body);
    }

    #[test]
    fn a_flooding_fleet_notifies_at_most_three_times_per_window_then_once_per_window() {
        let mut n = Notifier::new(600.0);
        n.step(&[], 0);
        let mut open = Vec::new();
        let mut shown = Vec::new();
        // Two new warnings every half second for 30 s.
        for tick in 1..=60_i64 {
            let now = tick * 500;
            for k in 0..2 {
                open.push(alert(&format!("{tick}-{k}"), Severity::Warning, now));
            }
            shown.extend(n.step(&open, now).into_iter().map(|x| (now, x)));
        }
        let per_window = |from: i64| {
            shown
                .iter()
                .filter(|(t, _)| *t >= from && *t < from + WINDOW_MS)
                .count()
        };
        assert!(per_window(500) <= MAX_PER_WINDOW, "{shown:?}");
        assert_eq!(per_window(10_500), 1, "{shown:?}");
        assert_eq!(per_window(20_500), 1, "{shown:?}");
        // Nothing is lost: every alert was in some notice.
        let covered: HashSet<&str> = shown
            .iter()
            .flat_map(|(_, x)| x.alert_ids.iter().map(String::as_str))
            .collect();
        let still_waiting = n.pending_raised.len();
        assert_eq!(covered.len() + still_waiting, open.len());
        // A waiting notice about an alert acknowledged meanwhile is dropped.
        let acked: Vec<Alert> = Vec::new();
        assert!(n.step(&acked, 100_000).is_empty());
        assert!(n.pending_raised.is_empty());
    }

    #[test]
    fn upstream_markup_reaches_the_daemon_escaped() {
        let mut n = Notifier::new(60.0);
        n.step(&[], 0);
        let mut a = alert("<i>x</i>", Severity::Critical, 0);
        a.message = r#"<b>x</b> & <a href="https://evil.example/">click</a> 'now'"#.into();
        a.rule = "<u>rule</u>".into();
        let shown = n.step(&[a], 1);
        assert_eq!(shown.len(), 1);
        let (title, body) = shown[0].for_daemon();
        assert_eq!(
            body,
            "&lt;b&gt;x&lt;/b&gt; &amp; &lt;a href=&quot;https://evil.example/&quot;&gt;click&lt;/a&gt; &#39;now&#39;"
        );
        assert_eq!(
            title,
            "critical: &lt;u&gt;rule&lt;/u&gt; on car-&lt;i&gt;x&lt;/i&gt;"
        );
        for s in [&title, &body] {
            assert!(
                !s.contains('<') && !s.contains('>') && !s.contains('"'),
                "{s}"
            );
        }
        // The recorded notice keeps the text as it came.
        assert!(shown[0].body.starts_with("<b>x</b> & "));
        assert_eq!(escape_markup("plain text"), "plain text");
    }

    #[test]
    fn clock_skewed_alerts_from_the_future_do_not_escalate_early() {
        let mut n = Notifier::new(60.0);
        n.step(&[], 0);
        let future = vec![alert("f", Severity::Critical, 500_000)];
        assert_eq!(n.step(&future, 100_000)[0].kind, NoticeKind::Raised);
        assert!(n.step(&future, 559_999).is_empty());
        assert_eq!(n.step(&future, 560_000)[0].kind, NoticeKind::Escalated);
    }

    /// SPEC §8: a notification names the car as people know it, by plate too.
    #[test]
    fn a_notification_names_the_plate_when_known() {
        let mut n = Notifier::new(60.0);
        n.step(&[], 0);
        let mut a = alert("p", Severity::Critical, 1_000);
        a.plate = Some("12가3456".into());
        let shown = n.step(&[a], 2_000);
        assert_eq!(shown[0].title, "critical: overspeed on car-p (12가3456)");
    }
}
