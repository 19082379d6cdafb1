//! The Argo CD health check of Tributary's kinds, `charts/tributary/argocd/health.lua`, run
//! with Debian's Lua (`lua5.4`, from stack/scripts/install-deps.sh) the way Argo CD runs it:
//! the object as the global table `obj`, only the base and table libraries. Needs no cluster.
//!
//! - every sample in `charts/tributary/argocd/testdata` gets the status and message that
//!   `health_test.yaml` (the layout of Argo CD's own `resource_customizations` tests) expects,
//!   from the very script of its kind's key in the generated `argocd-cm.yaml`;
//! - `argocd-cm.yaml` and `argo-cd-values.yaml` hold exactly `health.lua`, one key per kind;
//! - every condition reason of `api/src/conditions.rs` has a health, and the README's table
//!   of them says the same.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tributary_api::Reason;
use tributary_tests::repo_root;

const KINDS: [&str; 5] = ["Tenant", "Topic", "CassandraSink", "KafkaUser", "TopicGrant"];
const LUA: &str = "lua5.4";
/// The statuses Argo CD accepts from a health script.
const STATUSES: [&str; 6] = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"];
/// The cases every kind has a sample of (`testdata/<kind>/<case>.yaml`).
const CASES: [&str; 6] =
    ["healthy", "no-status", "progressing-generation", "progressing-transient", "degraded", "deleting"];

fn dir() -> PathBuf {
    repo_root().join("charts/tributary/argocd")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn script() -> String {
    read(&dir().join("health.lua"))
}

fn key(kind: &str) -> String {
    format!("resource.customizations.health.tributary.dev_{kind}")
}

/// `s` as a Lua string literal.
fn lua_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\{:03}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `value` as a Lua table constructor, as Argo CD hands an object to its scripts: maps are
/// tables keyed by string, lists are tables indexed from 1, null is nil.
fn lua_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(f)) => out.push_str(&format!("{f:?}")),
            (None, None) => panic!("number {n} has no Lua form"),
        },
        Value::String(s) => lua_string(s, out),
        Value::Array(items) => {
            out.push('{');
            for item in items {
                lua_value(item, out);
                out.push_str(", ");
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (k, v) in map {
                out.push('[');
                lua_string(k, out);
                out.push_str("] = ");
                lua_value(v, out);
                out.push_str(", ");
            }
            out.push('}');
        }
    }
}

/// Runs `script` on `obj` with `lua5.4`, in an environment holding what Argo CD's Lua VM
/// (gopher-lua) offers health scripts: the base functions common to Lua 5.1 and 5.4, the
/// table library and a safe `os`; no `string` or `math` library and no string methods.
/// Returns `(hs.status, hs.message)`, or why the script failed.
fn health(script: &str, obj: &Value) -> Result<(String, String), String> {
    let mut harness = String::from("local source = ");
    lua_string(script, &mut harness);
    harness.push_str("\nlocal obj = ");
    lua_value(obj, &mut harness);
    harness.push_str(
        r#"
local env = {
  obj = obj, assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, print = print, rawequal = rawequal, rawget = rawget, rawset = rawset,
  select = select, getmetatable = getmetatable, setmetatable = setmetatable,
  tonumber = tonumber, tostring = tostring, type = type, xpcall = xpcall, table = table,
  os = { clock = os.clock, date = os.date, difftime = os.difftime, time = os.time },
}
env._G = env
getmetatable("").__index = nil
local chunk, err = load(source, "=health.lua", "t", env)
if chunk == nil then
  io.stderr:write(err)
  os.exit(2)
end
local ok, hs = pcall(chunk)
if not ok then
  io.stderr:write(tostring(hs))
  os.exit(3)
end
if type(hs) ~= "table" then
  io.stderr:write("the script returned a " .. type(hs) .. ", not a table")
  os.exit(4)
end
if type(hs.status) ~= "string" or (hs.message ~= nil and type(hs.message) ~= "string") then
  io.stderr:write("hs.status must be a string and hs.message a string or nil")
  os.exit(5)
end
io.write(hs.status, "\n", hs.message or "")
"#,
    );
    let mut child = Command::new(LUA)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {LUA} ({e}): install Debian's package lua5.4 (stack/scripts/install-deps.sh)")
        });
    child.stdin.take().expect("stdin").write_all(harness.as_bytes()).expect("write to lua5.4");
    let out = child.wait_with_output().expect("lua5.4 ran");
    if !out.status.success() {
        return Err(format!("lua5.4 failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 from lua5.4");
    let (status, message) = stdout.split_once('\n').ok_or_else(|| format!("no status line in {stdout:?}"))?;
    if !STATUSES.contains(&status) {
        return Err(format!("hs.status {status:?} is not one of Argo CD's {STATUSES:?}"));
    }
    Ok((status.to_string(), message.to_string()))
}

/// The scripts of `argocd-cm.yaml`, by kind.
fn argocd_cm_scripts() -> BTreeMap<String, String> {
    let cm = yaml(&dir().join("argocd-cm.yaml"));
    assert_eq!((cm["apiVersion"].as_str(), cm["kind"].as_str()), (Some("v1"), Some("ConfigMap")));
    assert_eq!(cm["metadata"]["name"].as_str(), Some("argocd-cm"));
    scripts_by_kind(&cm["data"], "argocd-cm.yaml data")
}

fn scripts_by_kind(data: &Value, what: &str) -> BTreeMap<String, String> {
    let data = data.as_object().unwrap_or_else(|| panic!("{what} is not a map"));
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    let wanted: Vec<String> = KINDS.iter().map(|k| key(k)).collect();
    assert_eq!(keys, wanted.iter().map(String::as_str).collect(), "the keys of {what}");
    KINDS.iter().map(|kind| (kind.to_string(), data[&key(kind)].as_str().expect("a script").to_string())).collect()
}

#[test]
fn the_argocd_snippets_hold_health_lua_once_per_kind() {
    let script = script();
    let regenerate = "run charts/tributary/argocd/generate.sh and commit the result";
    for (kind, text) in argocd_cm_scripts() {
        assert!(text == script, "argocd-cm.yaml's script for {kind} is not health.lua: {regenerate}");
    }
    let values = yaml(&dir().join("argo-cd-values.yaml"));
    for (kind, text) in scripts_by_kind(&values["configs"]["cm"], "argo-cd-values.yaml configs.cm") {
        assert!(text == script, "argo-cd-values.yaml's script for {kind} is not health.lua: {regenerate}");
    }
}

#[test]
fn health_lua_keeps_to_what_argo_cds_lua_offers() {
    // Argo CD's gopher-lua is Lua 5.1 with neither the string nor the math library; the
    // sandbox of `health` catches a call to them on the paths the samples take, this any.
    let script = script();
    for (n, line) in script.lines().enumerate() {
        let code = line.split("--").next().unwrap_or_default();
        for word in ["goto", "//", "::", "string.", "math.", "utf8.", "require"] {
            assert!(!code.contains(word), "health.lua:{}: {word:?} is not available in Argo CD: {line}", n + 1);
        }
    }
}

/// Each kind's Rust type reads the sample, so the samples are objects the operator writes.
fn check_shape(kind: &str, obj: &Value) -> Result<(), serde_json::Error> {
    let obj = obj.clone();
    match kind {
        "Tenant" => serde_json::from_value::<tributary_api::Tenant>(obj).map(drop),
        "Topic" => serde_json::from_value::<tributary_api::Topic>(obj).map(drop),
        "CassandraSink" => serde_json::from_value::<tributary_api::CassandraSink>(obj).map(drop),
        "KafkaUser" => serde_json::from_value::<tributary_api::KafkaUser>(obj).map(drop),
        "TopicGrant" => serde_json::from_value::<tributary_api::TopicGrant>(obj).map(drop),
        other => panic!("{other} is not a Tributary kind"),
    }
}

#[test]
fn every_sample_gets_the_health_health_test_yaml_expects() {
    let scripts = argocd_cm_scripts();
    let tests = yaml(&dir().join("health_test.yaml"));
    let tests = tests["tests"].as_array().expect("health_test.yaml: tests is a list");
    let mut listed = BTreeSet::new();
    let mut failed = Vec::new();
    for test in tests {
        let input = test["inputPath"].as_str().expect("inputPath");
        let want = (
            test["healthStatus"]["status"].as_str().expect("healthStatus.status"),
            test["healthStatus"]["message"].as_str().expect("healthStatus.message"),
        );
        assert!(listed.insert(input.to_string()), "health_test.yaml lists {input} twice");
        let obj = yaml(&dir().join(input));
        assert_eq!(obj["apiVersion"].as_str(), Some("tributary.dev/v1alpha1"), "{input}");
        let kind = obj["kind"].as_str().unwrap_or_else(|| panic!("{input} has no kind"));
        check_shape(kind, &obj).unwrap_or_else(|e| panic!("{input} is no {kind}: {e}"));
        match health(&scripts[kind], &obj) {
            Ok((status, message)) if (status.as_str(), message.as_str()) == want => {
                println!("ok   {input}: {status} {message:?}");
            }
            Ok((status, message)) => {
                println!("FAIL {input}: got {status} {message:?}, want {} {:?}", want.0, want.1);
                failed.push(format!("{input} (got {status} {message:?}, want {} {:?})", want.0, want.1));
            }
            Err(e) => {
                println!("FAIL {input}: {e}");
                failed.push(format!("{input} ({e})"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} samples got the wrong health:\n{}",
        failed.len(),
        tests.len(),
        failed.join("\n")
    );

    // Every sample is listed, and every kind has every case.
    let mut on_disk = BTreeSet::new();
    for kind in KINDS {
        let kind_dir = dir().join("testdata").join(kind.to_lowercase());
        for case in CASES {
            let sample = format!("testdata/{}/{case}.yaml", kind.to_lowercase());
            assert!(listed.contains(&sample), "{kind} has no {case} sample listed in health_test.yaml ({sample})");
        }
        for entry in std::fs::read_dir(&kind_dir).unwrap_or_else(|e| panic!("{}: {e}", kind_dir.display())) {
            let name = entry.expect("a directory entry").file_name().into_string().expect("a UTF-8 name");
            on_disk.insert(format!("testdata/{}/{name}", kind.to_lowercase()));
        }
    }
    let unlisted: Vec<_> = on_disk.difference(&listed).collect();
    assert!(unlisted.is_empty(), "samples health_test.yaml does not list: {unlisted:?}");
}

/// Every reason, so that the one in `api/src/conditions.rs` can be compared with it.
const REASONS: [Reason; 28] = [
    Reason::Provisioned,
    Reason::Running,
    Reason::InvalidSpec,
    Reason::OwnershipConflict,
    Reason::NamespaceTaken,
    Reason::AdoptionRefused,
    Reason::Conflict,
    Reason::GuardrailViolated,
    Reason::PartitionsMismatch,
    Reason::ReplicationFactorMismatch,
    Reason::MappingInvalid,
    Reason::Pending,
    Reason::NoTenant,
    Reason::TenantNotReady,
    Reason::TopicNotFound,
    Reason::TopicNotReady,
    Reason::ChildrenNotReady,
    Reason::ReplicasNotReady,
    Reason::Replaying,
    Reason::Suspended,
    Reason::NotGranted,
    Reason::KafkaUnavailable,
    Reason::KafkaDegraded,
    Reason::KafkaRejected,
    Reason::CassandraUnavailable,
    Reason::CassandraRejected,
    Reason::TableMatches,
    Reason::ColumnMismatch,
];

/// The Ready status a reason comes with and the health it must give; `None` for the reasons
/// of other conditions. No wildcard: a new reason does not compile until it has a health.
fn expected(reason: Reason) -> Option<(&'static str, &'static str)> {
    use Reason::*;
    match reason {
        Provisioned | Running => Some(("True", "Healthy")),
        // A Tenant whose own things exist; its Topics and sinks show their own health.
        ChildrenNotReady => Some(("False", "Healthy")),
        // A person must change a spec (this one, its Tenant's, the table, a TopicGrant).
        InvalidSpec
        | OwnershipConflict
        | NamespaceTaken
        | AdoptionRefused
        | Conflict
        | GuardrailViolated
        | PartitionsMismatch
        | ReplicationFactorMismatch
        | MappingInvalid
        | NotGranted
        | NoTenant
        | KafkaRejected
        | CassandraRejected => Some(("False", "Degraded")),
        // The operator retries, or waits for something that is coming.
        Pending | TenantNotReady | TopicNotFound | TopicNotReady | ReplicasNotReady | Replaying | KafkaUnavailable
        | KafkaDegraded | CassandraUnavailable => Some(("False", "Progressing")),
        // A CassandraSink stopped on purpose (spec.suspend).
        Suspended => Some(("False", "Suspended")),
        // MappingValid's; its Ready=False is MappingInvalid.
        TableMatches | ColumnMismatch => None,
    }
}

/// The reasons declared in `api/src/conditions.rs` (the `reasons!` list).
fn declared_reasons() -> BTreeSet<String> {
    let source = read(&repo_root().join("api/src/conditions.rs"));
    let start = source.find("reasons! {").expect("conditions.rs declares its reasons with reasons! {");
    let block = &source[start + "reasons! {".len()..];
    let block = &block[..block.find('}').expect("the end of reasons! { .. }")];
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .map(|l| l.trim_end_matches(',').to_string())
        .collect()
}

#[test]
fn every_condition_reason_has_its_health_for_every_kind() {
    let ours: BTreeSet<String> = REASONS.iter().map(|r| r.as_str().to_string()).collect();
    assert_eq!(declared_reasons(), ours, "REASONS here must list every reason of api/src/conditions.rs");
    let scripts = argocd_cm_scripts();
    let mut failed = Vec::new();
    for kind in KINDS {
        for reason in REASONS {
            let Some((ready, want)) = expected(reason) else { continue };
            let obj = json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": kind,
                "metadata": {"name": "x", "namespace": "water", "generation": 2},
                "status": {"observedGeneration": 2, "conditions": [
                    {"type": "Ready", "status": ready, "reason": reason.as_str(), "message": "why",
                     "observedGeneration": 2, "lastTransitionTime": "2026-03-02T09:00:05Z"},
                ]},
            });
            let want_message = format!("{reason}: why");
            match health(&scripts[kind], &obj) {
                Ok((status, message)) if status == want && message == want_message => {}
                Ok((status, message)) => {
                    failed.push(format!("{kind} Ready={ready} {reason}: got {status} {message:?}, want {want}"))
                }
                Err(e) => failed.push(format!("{kind} Ready={ready} {reason}: {e}")),
            }
        }
    }
    assert!(failed.is_empty(), "wrong health:\n{}", failed.join("\n"));
}

#[test]
fn the_readme_table_names_each_reason_under_its_health() {
    let readme = read(&repo_root().join("README.md"));
    let heading = "## GitOps health (Argo CD)";
    let start = readme.find(heading).unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let names: BTreeSet<&str> = REASONS.iter().map(|r| r.as_str()).collect();
    for health in ["Healthy", "Progressing", "Degraded", "Suspended"] {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| {health} |")))
            .unwrap_or_else(|| panic!("the README's GitOps table has no row for {health}"));
        let in_readme: BTreeSet<&str> = row.split('`').skip(1).step_by(2).filter(|word| names.contains(word)).collect();
        let in_script: BTreeSet<&str> =
            REASONS.iter().filter(|r| expected(**r).is_some_and(|(_, h)| h == health)).map(|r| r.as_str()).collect();
        assert_eq!(in_readme, in_script, "the README's reasons for {health}");
    }
}
