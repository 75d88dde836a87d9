//! A reader of server-sent events for tests: the stream is read as it arrives (never to
//! its end), each event parsed by the rules of the HTML standard's event-stream format.

use std::time::Duration;

/// One event: its id, type and data (comments and keep-alives are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `id:`, if the event had one.
    pub id: Option<String>,
    /// `event:` (`message` when absent).
    pub event: String,
    /// The `data:` lines, joined by line breaks.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// An open stream.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// Reads an answer that must be a `200 text/event-stream`.
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), reqwest::StatusCode::OK, "a stream opens");
        let kind = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "content type {kind}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event within `wait`: `Ok(None)` when the stream ended, `Err(())` when
    /// nothing came in time.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<SseEvent>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Ok(Some(event));
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                Ok(Ok(None)) | Ok(Err(_)) => return Ok(None),
            }
        }
    }

    /// Waits for the stream to end within `wait`; an event instead, or no end in time,
    /// fails the test, saying `what` was expected.
    pub async fn ends_within(&mut self, wait: Duration, what: &str) {
        match self.next_within(wait).await {
            Ok(None) => {}
            Ok(Some(e)) => panic!("{what}: an event came instead: {e:?}"),
            Err(()) => panic!("{what}: not within {wait:?}"),
        }
    }

    /// The next event; panics if the stream ends or nothing comes within 30 s.
    pub async fn next(&mut self) -> SseEvent {
        match self.next_within(Duration::from_secs(30)).await {
            Ok(Some(e)) => e,
            Ok(None) => panic!("the stream ended"),
            Err(()) => panic!("no event within 30 s"),
        }
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, None, Vec::new());
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| SseEvent {
        id,
        event: event.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
    })
}

/// A client for streams: no total timeout (a stream lasts), a bounded connect.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| panic!("an HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_and_comments_skipped() {
        assert_eq!(parse(": keep-alive\n\n"), None);
        assert_eq!(
            parse("id: 3:x\nevent: notification\ndata: {\"a\":1}\n\n"),
            Some(SseEvent {
                id: Some("3:x".into()),
                event: "notification".into(),
                data: "{\"a\":1}".into()
            })
        );
        assert_eq!(parse("data:a\ndata: b\n\n").unwrap().data, "a\nb");
    }
}
