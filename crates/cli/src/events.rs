//! `steward events`: the operator's events, listed or followed (server-sent events).

use anyhow::Context as _;
use futures::StreamExt as _;
use serde_json::Value;

use crate::args::EventsArgs;
use crate::exit::Exit;
use crate::signal::shutdown_signal;
use crate::style;

/// `{operator}/api/v1/events?...`.
pub fn events_url(operator: &str, key: Option<&str>, follow: bool) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(operator.trim_end_matches('/'))
        .with_context(|| format!("--operator {operator:?} is not a URL"))?;
    url.set_path("/api/v1/events");
    {
        let mut q = url.query_pairs_mut();
        if let Some(k) = key {
            q.append_pair("key", k);
        }
        q.append_pair("follow", if follow { "true" } else { "false" });
    }
    Ok(url)
}

/// One line per event: time, type, key, reason, message (and the object).
pub fn format_event(event: &Value, colours: bool) -> String {
    let s = |f: &str| event.get(f).and_then(Value::as_str).unwrap_or_default();
    let padded = format!("{:<7}", s("type"));
    let kind = if s("type") == "Warning" && colours {
        console::style(padded)
            .yellow()
            .force_styling(true)
            .to_string()
    } else {
        padded
    };
    let object = match s("object") {
        "" => String::new(),
        o => format!(" [{o}]"),
    };
    format!(
        "{}  {kind}  {}  {}: {}{object}",
        s("time"),
        s("key"),
        s("reason"),
        s("message")
    )
}

/// The events of a `follow=false` answer: `{"events": [...]}` or a bare array.
pub fn event_list(body: Value) -> Vec<Value> {
    match body {
        Value::Array(list) => list,
        Value::Object(mut map) => match map.remove("events") {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Incremental parser of a `text/event-stream` body: feed bytes, get the `data` of
/// each complete event (multi-line data joined with `\n`; comments and other fields
/// ignored).
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(pos) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=pos).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data
                    .push(rest.strip_prefix(' ').unwrap_or(rest).to_owned());
            }
        }
        out
    }
}

fn print_data(data: &str, colours: bool) {
    match serde_json::from_str::<Value>(data) {
        Ok(v) => println!("{}", format_event(&v, colours)),
        Err(_) => println!("{data}"),
    }
}

/// Runs `steward events`.
///
/// # Errors
/// Operator unreachable or answering with an error (exit 2).
pub async fn run(args: &EventsArgs) -> anyhow::Result<Exit> {
    let url = events_url(&args.operator, args.key.as_deref(), args.follow)?;
    let client = reqwest::Client::new();
    let colours = style::stdout_colours();
    let unreachable = || {
        format!(
            "cannot reach the operator at {} (is `steward run` or `steward dev` running? --operator sets the address)",
            args.operator
        )
    };
    if !args.follow {
        let response = client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .with_context(unreachable)?
            .error_for_status()
            .context("the operator refused the request")?;
        let body: Value = response.json().await.context("cannot decode events")?;
        let events = event_list(body);
        for e in &events {
            println!("{}", format_event(e, colours));
        }
        if events.is_empty() {
            eprintln!("no events");
        }
        return Ok(Exit::Ok);
    }
    let response = client
        .get(url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .with_context(unreachable)?
        .error_for_status()
        .context("the operator refused the request")?;
    let mut stream = response.bytes_stream();
    let mut parser = SseParser::default();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(Exit::Ok),
            chunk = stream.next() => match chunk {
                Some(Ok(bytes)) => {
                    for data in parser.feed(&bytes) {
                        print_data(&data, colours);
                    }
                }
                Some(Err(e)) => return Err(anyhow::Error::new(e).context("event stream broken")),
                None => {
                    eprintln!("the operator closed the event stream");
                    return Ok(Exit::Ok);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sse_events_are_split_on_blank_lines_across_chunks() {
        let mut p = SseParser::default();
        assert!(
            p.feed(b": keep-alive\n\nevent: event\ndata: {\"a\"")
                .is_empty()
        );
        assert_eq!(
            p.feed(b":1}\n\ndata: x\r\ndata: y\r\n\r\n"),
            ["{\"a\":1}", "x\ny"]
        );
        assert!(p.feed(b"data: partial").is_empty());
    }

    #[test]
    fn listed_events_come_wrapped_or_bare() {
        assert_eq!(event_list(json!({"events": [1, 2]})), [json!(1), json!(2)]);
        assert_eq!(event_list(json!([3])), [json!(3)]);
        assert!(event_list(json!({"other": 1})).is_empty());
    }

    #[test]
    fn urls_carry_key_and_follow() {
        let u = events_url("http://127.0.0.1:7070/", Some("a/b"), false).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:7070/api/v1/events?key=a%2Fb&follow=false"
        );
        assert!(events_url("not a url", None, true).is_err());
    }

    #[test]
    fn events_read_as_one_line() {
        let e = json!({"time": "2026-01-01T00:00:00Z", "key": "a/b", "type": "Normal",
                       "reason": "JobRegistered", "message": "registered", "object": "nomad job a/b"});
        assert_eq!(
            format_event(&e, false),
            "2026-01-01T00:00:00Z  Normal   a/b  JobRegistered: registered [nomad job a/b]"
        );
    }
}
