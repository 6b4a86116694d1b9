//! The one progress display of the workspace (training loop, `hrm predict`, `hrm build-data`): an indicatif bar
//! on a terminal, and, when stderr is redirected (where indicatif draws nothing), one plain line with the
//! position, rate and ETA every [`LOG_INTERVAL`], as the DEVELOPERS standard asks of long runs.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How often a redirected progress display writes a line.
pub const LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Whether a progress display is drawn at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A bar on a terminal, plain lines every [`LOG_INTERVAL`] otherwise.
    Shown,
    /// Nothing (`--quiet`, tests).
    Hidden,
}

impl Display {
    /// [`Display::Shown`] when `show`, else [`Display::Hidden`] (for `!args.quiet`-style flags).
    pub fn shown_if(show: bool) -> Display {
        if show {
            Display::Shown
        } else {
            Display::Hidden
        }
    }
}

/// A bar over `len` items named `unit` (e.g. `steps`, `rows`).
pub fn bar(len: u64, unit: &str, display: Display) -> ProgressBar {
    bar_until(len, unit, display, None)
}

/// [`bar`] for work that also stops at `deadline` (a time cap such as `train.max_minutes`): its ETA is the
/// earlier of the rate's estimate and the time left.
pub fn bar_until(len: u64, unit: &str, display: Display, deadline: Option<Instant>) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    let (target, template) = match draw_target(display) {
        Some((t, true)) => (
            t,
            format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}} {{msg}}"),
        ),
        Some((t, false)) => (
            t,
            format!("[{{elapsed_precise}}] {{pos}}/{{len}} {unit} ({{percent}}%) {{per_sec}} eta {{eta}} {{msg}}"),
        ),
        None => return b,
    };
    b.set_style(style_until(&template, deadline));
    b.set_draw_target(target);
    if !std::io::stderr().is_terminal() {
        b.enable_steady_tick(LOG_INTERVAL);
    }
    b
}

/// The style of `template` whose `{eta}` is the earlier of the rate's estimate and the time left to `deadline`.
fn style_until(template: &str, deadline: Option<Instant>) -> ProgressStyle {
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    style.with_key(
        "eta",
        move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let eta = match deadline {
                Some(d) => state.eta().min(d.saturating_duration_since(Instant::now())),
                None => state.eta(),
            };
            let _ = write!(w, "{:#}", indicatif::HumanDuration(eta));
        },
    )
}

/// A spinner with a message and the elapsed time, for work that reports no progress of its own.
pub fn spinner(msg: &str, display: Display) -> ProgressBar {
    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let Some((target, on_terminal)) = draw_target(display) else {
        return b;
    };
    let template = if on_terminal {
        "{spinner} {msg} [{elapsed_precise}]"
    } else {
        "{msg} [{elapsed_precise}]"
    };
    b.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    b.set_message(msg.to_string());
    b.set_draw_target(target);
    let tick = if on_terminal {
        Duration::from_millis(200)
    } else {
        LOG_INTERVAL
    };
    b.enable_steady_tick(tick);
    b
}

/// The draw target for stderr and whether it is a terminal; `None` when hidden.
fn draw_target(display: Display) -> Option<(ProgressDrawTarget, bool)> {
    match display {
        Display::Hidden => None,
        Display::Shown if std::io::stderr().is_terminal() => {
            Some((ProgressDrawTarget::stderr(), true))
        }
        Display::Shown => Some((
            ProgressDrawTarget::term_like(Box::new(LineLog::new(
                Box::new(std::io::stderr()),
                LOG_INTERVAL,
            ))),
            false,
        )),
    }
}

/// A [`TermLike`] for redirected output: every redraw becomes at most one plain line, written only when
/// `interval` has passed since the last one (the first redraw is written at once); cursor movements are ignored.
pub struct LineLog {
    sink: Mutex<Box<dyn Write + Send>>,
    state: Mutex<LineState>,
    interval: Duration,
}

struct LineState {
    pending: String,
    last: Option<Instant>,
}

impl LineLog {
    /// Lines go to `sink`, at most one per `interval`.
    pub fn new(sink: Box<dyn Write + Send>, interval: Duration) -> LineLog {
        LineLog {
            sink: Mutex::new(sink),
            state: Mutex::new(LineState {
                pending: String::new(),
                last: None,
            }),
            interval,
        }
    }
}

impl std::fmt::Debug for LineLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineLog")
            .field("interval", &self.interval)
            .finish()
    }
}

impl TermLike for LineLog {
    fn width(&self) -> u16 {
        200
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)?;
        self.write_str(" ")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pending.push_str(s);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pending.clear();
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let line = st.pending.trim().to_string();
        st.pending.clear();
        let due = st.last.is_none_or(|t| t.elapsed() >= self.interval);
        if line.is_empty() || !due {
            return Ok(());
        }
        st.last = Some(Instant::now());
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(sink, "{line}")?;
        sink.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(interval: Duration) -> Vec<String> {
        let out = Shared::default();
        let log = LineLog::new(Box::new(out.clone()), interval);
        let b =
            ProgressBar::with_draw_target(Some(10), ProgressDrawTarget::term_like(Box::new(log)));
        b.set_style(ProgressStyle::with_template("{pos}/{len} steps eta {eta}").unwrap());
        for i in 1..=10 {
            b.set_position(i);
            b.tick();
        }
        b.finish_and_clear();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_time_cap_bounds_the_eta() {
        let eta_of = |deadline: Option<Instant>| {
            let out = Shared::default();
            let log = LineLog::new(Box::new(out.clone()), Duration::ZERO);
            let b = ProgressBar::with_draw_target(
                Some(1_000_000),
                ProgressDrawTarget::term_like(Box::new(log)),
            );
            b.set_style(style_until("eta {eta}", deadline));
            for i in 1..=3 {
                std::thread::sleep(Duration::from_millis(30));
                b.set_position(i);
                b.tick();
            }
            b.finish_and_clear();
            let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            text.lines().last().unwrap_or_default().to_string()
        };
        // A million steps at ~30 ms each is hours; a 2-minute cap says at most 2 minutes.
        let capped = eta_of(Some(Instant::now() + Duration::from_secs(120)));
        assert!(
            capped == "eta 2m" || capped == "eta 1m" || capped.ends_with('s'),
            "{capped}"
        );
        let open = eta_of(None);
        assert!(
            open.ends_with('h') || open.ends_with("days") || open.ends_with("day"),
            "{open}"
        );
    }

    #[test]
    fn redirected_output_gets_plain_lines_with_an_eta_at_the_interval() {
        let every = logged(Duration::ZERO);
        assert!(every.len() >= 2, "{every:?}");
        assert!(
            every.iter().all(|l| l.contains("/10 steps eta ")),
            "{every:?}"
        );
        assert!(
            every
                .iter()
                .all(|l| !l.contains('\r') && !l.contains('\u{1b}')),
            "{every:?}"
        );
        let rare = logged(Duration::from_secs(3600));
        assert_eq!(
            rare.len(),
            1,
            "only the first line within the interval: {rare:?}"
        );
    }

    #[test]
    fn hidden_displays_draw_nothing() {
        assert!(bar(5, "rows", Display::Hidden).is_hidden());
        assert!(spinner("x", Display::Hidden).is_hidden());
    }
}
