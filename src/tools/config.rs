//! `config`: the Kimai server's configuration and system information.
//!
//! `type` = `timesheet` (`GET /api/config/timesheet`), `colors` (`/api/config/colors`),
//! `plugins` (`/api/plugins`), `version` (`/api/version`), or `all`, which fetches the four in
//! parallel (scoped threads) and shows a part that failed inline, so that one missing
//! permission or an old Kimai without `/config/colors` (added in 2.18) does not hide the rest.

use super::{Context, Output, Tool, ToolError, kimai_error_text, text};
use serde_json::{Map, Value, json};

pub const TOOL: Tool = Tool {
    name: "config",
    title: "Kimai configuration",
    description: "Kimai server configuration. type: version; timesheet (tracking mode, how many timers may run, future and overlapping times); colors; plugins (e.g. whether absences exist); all.",
    schema,
    read_only: true,
    destructive: false,
    idempotent: true,
    handler,
};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": {
                "type": "string",
                "enum": ["timesheet", "colors", "plugins", "version", "all"],
                "description": "Which part of the configuration to read."
            }
        },
        "required": ["type"],
        "additionalProperties": false
    })
}

/// The four parts, in the order `all` shows them.
const PARTS: [Part; 4] = [Part::Version, Part::Timesheet, Part::Plugins, Part::Colors];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Version,
    Timesheet,
    Plugins,
    Colors,
}

impl Part {
    fn path(self) -> &'static str {
        match self {
            Part::Version => "/version",
            Part::Timesheet => "/config/timesheet",
            Part::Plugins => "/plugins",
            Part::Colors => "/config/colors",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Part::Version => "Version",
            Part::Timesheet => "Timesheet configuration",
            Part::Plugins => "Plugins",
            Part::Colors => "Colors",
        }
    }

    fn render(self, body: &Value) -> String {
        match self {
            Part::Version => render_version(body),
            Part::Timesheet => render_timesheet(body),
            Part::Plugins => render_plugins(body),
            Part::Colors => render_colors(body),
        }
    }

    fn fetch(self, ctx: &Context) -> Result<String, ToolError> {
        Ok(self.render(&ctx.get(self.path())?))
    }
}

fn handler(ctx: &Context, args: &Map<String, Value>) -> Result<Output, ToolError> {
    let part = match args.get("type").and_then(Value::as_str) {
        Some("version") => Part::Version,
        Some("timesheet") => Part::Timesheet,
        Some("plugins") => Part::Plugins,
        Some("colors") => Part::Colors,
        Some("all") => return all(ctx),
        _ => {
            return Err(ToolError::Invalid(
                "'type' must be one of timesheet, colors, plugins, version, all".into(),
            ));
        }
    };
    part.fetch(ctx).map(Output::text)
}

fn all(ctx: &Context) -> Result<Output, ToolError> {
    let results: Vec<Result<String, ToolError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = PARTS
            .iter()
            .map(|part| {
                std::thread::Builder::new()
                    .name(format!(
                        "config-{}",
                        part.path().trim_start_matches('/').replace('/', "-")
                    ))
                    .spawn_scoped(scope, move || part.fetch(ctx))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(ToolError::Failed("the request thread failed".into()))),
                Err(e) => Err(ToolError::Failed(format!(
                    "could not start a request thread: {e}"
                ))),
            })
            .collect()
    });
    if results.iter().all(Result::is_err) {
        // Nothing came back: that is a failure of the call (e.g. a revoked token), not a report.
        let first = results.into_iter().find_map(Result::err);
        return Err(first.unwrap_or_else(|| {
            ToolError::Failed("no part of the configuration could be read".into())
        }));
    }
    let blocks = PARTS
        .iter()
        .zip(results)
        .map(|(part, r)| match r {
            Ok(text) => text,
            Err(e) => format!("{}: unavailable\n{}", part.label(), error_line(&e)),
        })
        .collect();
    Ok(Output { blocks })
}

fn error_line(e: &ToolError) -> String {
    match e {
        ToolError::Kimai(k) => kimai_error_text(k),
        other => other.message(),
    }
}

fn render_version(v: &Value) -> String {
    let version = v
        .get("version")
        .and_then(Value::as_str)
        .map(text::safe)
        .unwrap_or_else(|| "unknown".into());
    let mut out = format!("Kimai version: {version}");
    if let Some(id) = v.get("versionId").and_then(Value::as_i64) {
        out.push_str(&format!("\nVersion id: {id}"));
    }
    if let Some(c) = v.get("copyright").and_then(Value::as_str) {
        out.push_str(&format!("\nCopyright: {}", text::safe(c)));
    }
    out
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

fn render_timesheet(v: &Value) -> String {
    let mode = v
        .get("trackingMode")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let mode_note = match mode {
        "default" => " (begin and end can be entered freely)",
        "punch" => {
            " (punch clock: only start and stop; begin/end can only be set by team leads and above)"
        }
        "duration_fixed_begin" => " (fixed begin time; only the duration is entered)",
        _ => "",
    };
    let limit = v.get("activeEntriesHardLimit").and_then(Value::as_i64);
    let mut lines = vec![
        "Timesheet configuration".to_string(),
        format!("Tracking mode: {}{mode_note}", text::safe(mode)),
        format!(
            "Default begin time: {}",
            v.get("defaultBeginTime")
                .and_then(Value::as_str)
                .map(text::safe)
                .unwrap_or_else(|| "unknown".into())
        ),
        format!(
            "Running records per user: {}",
            limit
                .map(|l| l.to_string())
                .unwrap_or_else(|| "unknown".into())
        ),
        format!(
            "Future times allowed: {}",
            yes_no(v.get("isAllowFutureTimes").and_then(Value::as_bool))
        ),
        format!(
            "Overlapping records allowed: {}",
            yes_no(v.get("isAllowOverlapping").and_then(Value::as_bool))
        ),
    ];
    if limit == Some(1) {
        lines.push("Note: starting a timer stops the user's running record automatically.".into());
    }
    if v.get("isAllowFutureTimes").and_then(Value::as_bool) == Some(false) {
        lines.push("Note: records cannot begin in the future.".into());
    }
    lines.join("\n")
}

fn render_plugins(v: &Value) -> String {
    let plugins: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .map(text::safe)
                .unwrap_or_else(|| "?".into());
            match p.get("version").and_then(Value::as_str) {
                Some(ver) => format!("- {name} {}", text::safe(ver)),
                None => format!("- {name}"),
            }
        })
        .collect();
    if plugins.is_empty() {
        return "Plugins: none installed (absences, public holidays and work contracts need the WorkContract plugin)".into();
    }
    format!("Plugins ({}):\n{}", plugins.len(), plugins.join("\n"))
}

fn render_colors(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return "Colors: Kimai returned no palette".into();
    };
    let lines: Vec<String> = map
        .iter()
        .map(|(name, hex)| {
            format!(
                "- {}: {}",
                text::safe(name),
                hex.as_str()
                    .map(text::safe)
                    .unwrap_or_else(|| hex.to_string())
            )
        })
        .collect();
    format!("Colors ({}):\n{}", lines.len(), lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timesheet_config_is_explained() {
        let out = render_timesheet(
            &json!({"trackingMode":"default","defaultBeginTime":"now","activeEntriesHardLimit":1,"isAllowFutureTimes":false,"isAllowOverlapping":true}),
        );
        assert!(out.contains("Tracking mode: default (begin and end can be entered freely)"));
        assert!(out.contains("Running records per user: 1"));
        assert!(out.contains("Future times allowed: no"));
        assert!(out.contains("Overlapping records allowed: yes"));
        assert!(out.contains("stops the user's running record"));
    }

    #[test]
    fn colors_keep_kimai_order() {
        let out = render_colors(&json!({"Silver":"#c0c0c0","Gray":"#808080","Black":"#000000"}));
        assert_eq!(
            out,
            "Colors (3):\n- Silver: #c0c0c0\n- Gray: #808080\n- Black: #000000"
        );
    }

    #[test]
    fn plugins_and_version() {
        assert!(render_plugins(&json!([])).starts_with("Plugins: none installed"));
        assert_eq!(
            render_plugins(&json!([{"name":"X\nY","version":"1.0"}])),
            "Plugins (1):\n- \"X\\nY\" 1.0"
        );
        assert_eq!(
            render_version(
                &json!({"version":"2.65.0","versionId":26500,"copyright":"Kimai 2.65.0 by Kevin Papst."})
            ),
            "Kimai version: 2.65.0\nVersion id: 26500\nCopyright: Kimai 2.65.0 by Kevin Papst."
        );
    }
}
