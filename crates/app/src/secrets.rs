//! The local server's secrets: `secrets.json` in the data directory, created once and readable
//! only by its owner. In AWS the pepper comes from Secrets Manager instead.

use std::path::Path;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sspr_core::ports::Rng;
use sspr_core::secret::Pepper;

/// The pepper of keyed hashes, from `DIR/secrets.json` (made on first start).
pub fn local_pepper(data_dir: &Path, rng: &dyn Rng) -> anyhow::Result<Pepper> {
    let path = data_dir.join("secrets.json");
    let mut json = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    if json.get("pepper").is_none() {
        // Made on first start, or added to a file the operator wrote with other secrets only
        // (`ldap_bind_password`): the rest is kept, the file replaced whole, still private.
        let object = json.as_object_mut().with_context(|| format!("{}: not a JSON object", path.display()))?;
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes);
        object.insert("pepper".to_owned(), serde_json::Value::String(STANDARD.encode(bytes)));
        let tmp = data_dir.join("secrets.json.new");
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, json.to_string().as_bytes()).with_context(|| format!("{}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("{}", path.display()))?;
    }
    let bytes = json
        .get("pepper")
        .and_then(|p| p.as_str())
        .and_then(|p| STANDARD.decode(p).ok())
        .with_context(|| format!("{}: no base64 \"pepper\"", path.display()))?;
    Pepper::new(bytes).with_context(|| format!("{}", path.display()))
}

/// A secret of `DIR/secrets.json` other than the pepper (e.g. `ldap_bind_password`), which the
/// operator writes there; the file stays readable by its owner only.
pub fn local_secret(data_dir: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let path = data_dir.join("secrets.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    Ok(json.get(name).and_then(|v| v.as_str()).map(str::to_owned))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sspr_core::ports::SystemRng;

    #[test]
    fn the_secrets_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().expect("dir");
        local_pepper(dir.path(), &SystemRng).expect("made");
        let first = std::fs::read_to_string(dir.path().join("secrets.json")).expect("file");
        local_pepper(dir.path(), &SystemRng).expect("read");
        assert_eq!(std::fs::read_to_string(dir.path().join("secrets.json")).expect("file"), first, "kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("secrets.json")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
        std::fs::write(dir.path().join("secrets.json"), r#"{"pepper":"c2hvcnQ="}"#).expect("write");
        assert!(local_pepper(dir.path(), &SystemRng).is_err(), "a short pepper is refused");
    }

    #[test]
    fn a_secrets_file_without_a_pepper_gets_one_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, r#"{"ldap_bind_password":"service-Passw0rd"}"#).expect("write");
        local_pepper(dir.path(), &SystemRng).expect("made");
        assert_eq!(local_secret(dir.path(), "ldap_bind_password").expect("read").as_deref(), Some("service-Passw0rd"));
        let pepper = local_secret(dir.path(), "pepper").expect("read").expect("a pepper");
        local_pepper(dir.path(), &SystemRng).expect("read");
        assert_eq!(local_secret(dir.path(), "pepper").expect("read"), Some(pepper), "made once");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
        assert!(!dir.path().join("secrets.json.new").exists());
    }
}
