//! A raw HTTP/1.1 client for the form endpoints: any method, content type
//! and body, from any loopback address, with or without a declared length.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The loopback address requests come from unless a test says otherwise.
pub const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// An answer from the relay.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The body as JSON, or `null` if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The first header called `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request from `from` (a loopback address), the body sent
/// while the answer is read, so that an early answer (413) is seen even
/// if the relay stops reading.
pub async fn http(
    addr: SocketAddr,
    from: IpAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    chunked: bool,
) -> Result<Answer> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = socket.connect(addr).await?;
    let (mut read, mut write) = stream.into_split();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        if chunked {
            for chunk in body.chunks(8 * 1024) {
                write
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                write.write_all(chunk).await?;
                write.write_all(b"\r\n").await?;
            }
            write.write_all(b"0\r\n\r\n").await?;
        } else {
            write.write_all(&body).await?;
        }
        std::io::Result::Ok(write)
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match read.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived: keep what was read.
            Err(_) if !raw.is_empty() => break,
            Err(e) => return Err(e.into()),
        }
    }
    let _ = writer.await;
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Result<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16)?;
            if size == 0 {
                break;
            }
            out.push_str(after.get(..size).context("a short chunk")?);
            rest = after.get(size + 2..).unwrap_or_default();
        }
        out
    } else {
        rest.to_owned()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}
