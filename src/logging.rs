//! `--log-format json` (`KIMAI_MCP_LOG_FORMAT=json`): one JSON object per log line, for log
//! pipelines — `time` (UTC, RFC 3339 with milliseconds), `level`, `target`, `message`, and the
//! structured fields of the line (the access and audit lines carry theirs: client address,
//! method, path, status, duration; user label, tool, action, outcome). The text format, the
//! default, prints the message only; the fields are in it already.
//!
//! What reaches a line is what the code logs; it never logs a token, slug or request body, in
//! either format.

use serde_json::{Map, Value};
use std::io::Write;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(v: &str) -> Result<LogFormat, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "--log-format / KIMAI_MCP_LOG_FORMAT must be text or json, got {:?}",
                other.chars().take(20).collect::<String>()
            )),
        }
    }

    /// The format the command line asks for (`--log-format VALUE` or `--log-format=VALUE`),
    /// else `KIMAI_MCP_LOG_FORMAT`, else text. Read before the rest of the command line, so
    /// that even its errors are logged in the chosen format.
    pub fn from_args(
        args: &[std::ffi::OsString],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<LogFormat, String> {
        let mut given = None;
        let mut it = args.iter().map(|a| a.to_string_lossy());
        while let Some(a) = it.next() {
            if a == "--" {
                break;
            }
            if a == "--log-format" {
                given = Some(
                    it.next()
                        .map(|v| v.into_owned())
                        .ok_or("--log-format needs a value: text or json")?,
                );
            } else if let Some(v) = a.strip_prefix("--log-format=") {
                given = Some(v.to_string());
            }
        }
        match given.or_else(|| env("KIMAI_MCP_LOG_FORMAT")) {
            Some(v) => LogFormat::parse(&v),
            None => Ok(LogFormat::Text),
        }
    }
}

/// Collects a record's key-value fields.
struct Fields<'a>(&'a mut Map<String, Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let key = key.as_str();
        // The fixed fields keep their meaning: a field of the same name is prefixed.
        let key = if ["time", "level", "target", "message"].contains(&key) {
            format!("field_{key}")
        } else {
            key.to_string()
        };
        let v = if let Some(n) = value.to_u64() {
            Value::from(n)
        } else if let Some(n) = value.to_i64() {
            Value::from(n)
        } else if let Some(b) = value.to_bool() {
            Value::from(b)
        } else {
            Value::from(value.to_string())
        };
        self.0.insert(key, v);
        Ok(())
    }
}

/// One JSON line for `record` at `time`.
pub fn json_line(time: &str, record: &log::Record<'_>) -> String {
    let mut m = Map::new();
    m.insert("time".into(), Value::from(time));
    m.insert("level".into(), Value::from(record.level().as_str()));
    m.insert("target".into(), Value::from(record.target()));
    m.insert("message".into(), Value::from(record.args().to_string()));
    let _ = record.key_values().visit(&mut Fields(&mut m));
    Value::Object(m).to_string()
}

/// The `env_logger` format function for [`LogFormat::Json`].
pub fn write_json(
    buf: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    let time = buf.timestamp_millis().to_string();
    writeln!(buf, "{}", json_line(&time, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_format_comes_from_the_flag_then_the_environment() {
        let none = |_: &str| None;
        let json_env = |k: &str| (k == "KIMAI_MCP_LOG_FORMAT").then(|| "JSON".to_string());
        assert_eq!(
            LogFormat::from_args(&args(&["serve"]), &none),
            Ok(LogFormat::Text)
        );
        assert_eq!(
            LogFormat::from_args(&args(&["serve"]), &json_env),
            Ok(LogFormat::Json)
        );
        assert_eq!(
            LogFormat::from_args(&args(&["serve", "--log-format", "json"]), &none),
            Ok(LogFormat::Json)
        );
        assert_eq!(
            LogFormat::from_args(&args(&["--log-format=text", "serve"]), &json_env),
            Ok(LogFormat::Text)
        );
        assert!(LogFormat::from_args(&args(&["--log-format"]), &none).is_err());
        assert!(LogFormat::from_args(&args(&["--log-format", "xml"]), &none).is_err());
        // After `--` nothing is an option.
        assert_eq!(
            LogFormat::from_args(&args(&["--", "--log-format", "json"]), &none),
            Ok(LogFormat::Text)
        );
    }

    #[test]
    fn a_json_line_has_the_fixed_and_the_structured_fields() {
        let kvs: [(&str, log::kv::Value<'_>); 4] = [
            ("tool", log::kv::Value::from("timesheet")),
            ("duration_ms", log::kv::Value::from(12u64)),
            ("ok", log::kv::Value::from(true)),
            ("message", log::kv::Value::from("shadow")),
        ];
        let line = json_line(
            "2026-12-06T07:00:00.123Z",
            &log::Record::builder()
                .level(log::Level::Info)
                .target("kimai_mcp::audit")
                .args(format_args!("kimai-user-3 tool=timesheet \"quoted\"\nnext"))
                .key_values(&kvs)
                .build(),
        );
        assert!(!line.contains('\n'), "one line: {line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2026-12-06T07:00:00.123Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "kimai_mcp::audit");
        assert_eq!(v["message"], "kimai-user-3 tool=timesheet \"quoted\"\nnext");
        assert_eq!(v["tool"], "timesheet");
        assert_eq!(v["duration_ms"], 12);
        assert_eq!(v["ok"], true);
        assert_eq!(v["field_message"], "shadow");
    }
}
