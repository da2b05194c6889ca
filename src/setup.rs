//! `kimai-mcp setup`: asks for the Kimai URL, API token and TLS setting, checks them against
//! Kimai, and writes the Claude Desktop configuration for this machine (or, with `--print`,
//! only shows it).
//!
//! Only our own entry (`mcpServers.kimai`) is changed; everything else in the file is kept,
//! and the old file is first copied to `<name>.backup-<unix seconds>.json`. The token goes into
//! the entry's `env` block, not into `args`, where every user of the machine could read it in
//! the process list. The file is written through a temporary file and a rename, so a crash
//! never leaves half a configuration.

use serde_json::{Map, Value, json};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Where Claude Desktop keeps its configuration on this OS (`None` when the home directory is
/// unknown).
pub fn claude_config_path() -> Option<PathBuf> {
    if cfg!(target_os = "windows") {
        return std::env::var_os("APPDATA").map(|a| {
            PathBuf::from(a)
                .join("Claude")
                .join("claude_desktop_config.json")
        });
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Application Support/Claude/claude_desktop_config.json")
    } else {
        home.join(".config/Claude/claude_desktop_config.json")
    })
}

/// What the wizard needs from the outside world.
pub struct Io<'a> {
    pub input: &'a mut dyn BufRead,
    pub output: &'a mut dyn Write,
    /// Checks URL, token and TLS setting against Kimai: `Ok("Kimai 2.65.0, user anna")`.
    pub check: &'a dyn Fn(&str, &str, &str) -> Result<String, String>,
}

fn ask(io: &mut Io, prompt: &str) -> Result<String, String> {
    write!(io.output, "{prompt}").map_err(|e| e.to_string())?;
    io.output.flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    let n = io.input.read_line(&mut line).map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("input ended before the setup was complete".into());
    }
    Ok(line.trim().to_string())
}

/// The entry this wizard writes.
pub fn entry(exe: &str, url: &str, token: &str, tls: &str) -> Value {
    let mut env = Map::new();
    env.insert("KIMAI_URL".into(), json!(url));
    env.insert("KIMAI_API_TOKEN".into(), json!(token));
    if tls != "true" {
        env.insert("KIMAI_SSL_VERIFY".into(), json!(tls));
    }
    json!({"command": exe, "args": [], "env": env})
}

/// Runs the wizard. Returns the path written, or `None` with `--print`.
pub fn run(
    io: &mut Io,
    exe: &str,
    config: &Path,
    print_only: bool,
) -> Result<Option<PathBuf>, String> {
    writeln!(
        io.output,
        "kimai-mcp setup: connect Claude Desktop to your Kimai."
    )
    .map_err(|e| e.to_string())?;
    let url = ask(io, "Kimai URL (e.g. https://kimai.example.com): ")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "the Kimai URL must start with https:// or http:// (got {url:?})"
        ));
    }
    let url = url
        .trim_end_matches('/')
        .trim_end_matches("/api")
        .to_string();
    let token = ask(io, "Kimai API token (your profile > API access): ")?;
    if token.is_empty() {
        return Err(
            "an API token is required: create one in Kimai under your profile, API access".into(),
        );
    }
    let tls = ask(
        io,
        "Verify TLS certificates? true, false or the path of a CA file [true]: ",
    )?;
    let tls = if tls.is_empty() {
        "true".to_string()
    } else {
        tls
    };
    match (io.check)(&url, &token, &tls) {
        Ok(who) => writeln!(io.output, "Connected: {who}").map_err(|e| e.to_string())?,
        Err(e) => return Err(format!("the settings do not work: {e}")),
    }
    let mut doc: Value = match std::fs::read_to_string(config) {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not valid JSON ({e}); fix or move it, then run setup again",
                config.display()
            )
        })?,
        _ => json!({}),
    };
    let Some(root) = doc.as_object_mut() else {
        return Err(format!("{} does not hold a JSON object", config.display()));
    };
    let servers = root.entry("mcpServers").or_insert_with(|| json!({}));
    let Some(servers) = servers.as_object_mut() else {
        return Err(format!(
            "\"mcpServers\" in {} is not an object",
            config.display()
        ));
    };
    servers.insert("kimai".into(), entry(exe, &url, &token, &tls));
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
    if print_only {
        writeln!(io.output, "\n{} would become:\n{text}", config.display())
            .map_err(|e| e.to_string())?;
        return Ok(None);
    }
    let answer = ask(io, &format!("Write this to {}? (y/N): ", config.display()))?;
    if !answer.eq_ignore_ascii_case("y") && !answer.eq_ignore_ascii_case("yes") {
        writeln!(
            io.output,
            "Nothing written. Run `kimai-mcp setup --print` to see the configuration."
        )
        .map_err(|e| e.to_string())?;
        return Ok(None);
    }
    if let Some(dir) = config.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if config.exists() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let stem = config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into());
        let backup = config.with_file_name(format!("{stem}.backup-{secs}.json"));
        std::fs::copy(config, &backup)
            .map_err(|e| format!("cannot back up {}: {e}", config.display()))?;
        writeln!(io.output, "Backup: {}", backup.display()).map_err(|e| e.to_string())?;
    }
    let tmp = config.with_extension("json.tmp");
    std::fs::write(&tmp, &text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // It now holds an API token.
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::rename(&tmp, config)
        .map_err(|e| format!("cannot replace {}: {e}", config.display()))?;
    writeln!(
        io.output,
        "Written. Restart Claude Desktop to use the kimai tools."
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(config.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kimai-setup-{}",
            crate::secret::random_hex::<8>().unwrap()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn go(
        input: &str,
        config: &Path,
        print_only: bool,
        ok: bool,
    ) -> (Result<Option<PathBuf>, String>, String) {
        let mut input = std::io::Cursor::new(input.as_bytes().to_vec());
        let mut output = Vec::new();
        let check = |_: &str, t: &str, _: &str| {
            if ok && t == "tok" {
                Ok("Kimai 2.65.0, user anna".to_string())
            } else {
                Err("401".to_string())
            }
        };
        let mut io = Io {
            input: &mut input,
            output: &mut output,
            check: &check,
        };
        let r = run(&mut io, "/usr/local/bin/kimai-mcp", config, print_only);
        (r, String::from_utf8(output).unwrap())
    }

    #[test]
    fn merges_only_its_own_entry_after_a_backup() {
        let dir = temp();
        let cfg = dir.join("claude_desktop_config.json");
        std::fs::write(
            &cfg,
            r#"{"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}"#,
        )
        .unwrap();
        let (r, out) = go("https://k.example/api/\ntok\n\ny\n", &cfg, false, true);
        assert_eq!(r.unwrap().as_deref(), Some(cfg.as_path()), "{out}");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        assert_eq!(v["theme"], "dark");
        assert_eq!(v["mcpServers"]["other"]["command"], "x");
        assert_eq!(
            v["mcpServers"]["kimai"]["env"]["KIMAI_URL"],
            "https://k.example"
        );
        assert_eq!(v["mcpServers"]["kimai"]["env"]["KIMAI_API_TOKEN"], "tok");
        assert!(
            v["mcpServers"]["kimai"]["env"]
                .get("KIMAI_SSL_VERIFY")
                .is_none()
        );
        let backups = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("backup-")
            })
            .count();
        assert_eq!(backups, 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn print_only_and_refusals_write_nothing() {
        let dir = temp();
        let cfg = dir.join("claude_desktop_config.json");
        let (r, out) = go("https://k.example\ntok\nfalse\n", &cfg, true, true);
        assert_eq!(r.unwrap(), None);
        assert!(
            out.contains("\"KIMAI_SSL_VERIFY\": \"false\"") && !cfg.exists(),
            "{out}"
        );
        let (r, _) = go("https://k.example\nbad\n\n", &cfg, false, true);
        assert!(r.unwrap_err().contains("do not work"));
        let (r, _) = go("kimai.example\n", &cfg, false, true);
        assert!(r.unwrap_err().contains("https://"));
        let (r, out) = go("https://k.example\ntok\n\nn\n", &cfg, false, true);
        assert_eq!(r.unwrap(), None);
        assert!(out.contains("Nothing written") && !cfg.exists());
        let (r, _) = go("https://k.example\n", &cfg, false, true);
        assert!(r.unwrap_err().contains("input ended"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
