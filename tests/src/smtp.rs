//! A minimal SMTP server on 127.0.0.1 that keeps every message it takes,
//! for tests of e-mailed notifications.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One message the sink took: its `RCPT TO` lines and its text.
pub type Mail = (Vec<String>, String);

/// Every message a minimal SMTP server on 127.0.0.1 took.
#[derive(Clone, Debug, Default)]
pub struct Sink(Arc<Mutex<Vec<Mail>>>);

impl Sink {
    /// Starts the server; its `smtp://` URL.
    pub fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mail = self.0.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mail = mail.clone();
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut lines = BufReader::new(stream);
                    let mut say = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
                    let _ = say("220 sink ESMTP");
                    let (mut to, mut data, mut in_data) = (Vec::new(), String::new(), false);
                    let mut line = String::new();
                    while lines.read_line(&mut line).unwrap_or(0) > 0 {
                        let text = line.trim_end().to_owned();
                        line.clear();
                        if in_data {
                            if text == "." {
                                in_data = false;
                                mail.lock()
                                    .unwrap()
                                    .push((std::mem::take(&mut to), std::mem::take(&mut data)));
                                let _ = say("250 queued");
                            } else {
                                data.push_str(&text);
                                data.push('\n');
                            }
                            continue;
                        }
                        let verb = text.split_whitespace().next().unwrap_or("").to_uppercase();
                        let _ = match verb.as_str() {
                            "EHLO" | "HELO" => say("250 sink"),
                            "RCPT" => {
                                to.push(text.clone());
                                say("250 ok")
                            }
                            "DATA" => {
                                in_data = true;
                                say("354 go on")
                            }
                            "QUIT" => {
                                let _ = say("221 bye");
                                break;
                            }
                            _ => say("250 ok"),
                        };
                    }
                });
            }
        });
        url
    }

    pub fn messages(&self) -> Vec<Mail> {
        self.0.lock().unwrap().clone()
    }
}
