//! The deployment files of `deploy/`, checked by the tools their platforms
//! use, not only read:
//! - every Kubernetes manifest passes `kubernetes-validate --strict` (PyPI,
//!   installed in a venv by `scripts/install-test-deps.sh`) for the oldest and
//!   newest Kubernetes version it knows that we support; the ServiceMonitors
//!   and the PrometheusRule, which it cannot check, pass the schemas of
//!   `tests/data/prometheus-operator/schema.py` (written from the operator's
//!   API reference), as strictly;
//! - the sidecar never gates its app pod's readiness, mounts no API token,
//!   and the ServiceMonitors agree on the label Prometheus selects them by;
//! - the systemd unit passes `systemd-analyze verify` and can write the
//!   state files the example config names;
//! - the compose stack's Prometheus and Alertmanager have their own network
//!   namespace.
//!
//! Each check is also run on a broken copy, so a check that cannot fail
//! would be caught. (`tests/dashboards.rs` holds the older, textual checks
//! of the same files.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The YAML documents of a file, as JSON values.
fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// What a tool printed, both streams.
fn stdout_and_stderr(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The one YAML document of `rel`.
fn yaml_file(rel: &str) -> Value {
    let mut docs = yaml_documents(&read(rel));
    assert_eq!(docs.len(), 1, "{rel}: expected one document");
    docs.remove(0)
}

// ------------------------------------------------------------ Kubernetes

/// The venv `scripts/install-test-deps.sh` installs kubernetes-validate into.
fn test_venv() -> PathBuf {
    std::env::var_os("PERFWATCH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/perfwatch-test-venv"))
}

/// Runs a program of the test venv; a missing one fails with how to install it.
fn venv_tool(name: &str, args: &[&std::ffi::OsStr]) -> Output {
    let path = test_venv().join("bin").join(name);
    Command::new(&path).args(args).output().unwrap_or_else(|e| {
        panic!(
            "{} not found ({e}): run scripts/install-test-deps.sh (a venv with kubernetes-validate at {})",
            path.display(),
            test_venv().display()
        )
    })
}

/// Kubernetes versions the manifests are validated against: the oldest and
/// the newest that kubernetes-validate 1.37.0 has schemas for and that a
/// supported cluster may run.
const KUBERNETES_VERSIONS: &[&str] = &["1.29.0", "1.37.0"];

/// Kinds kubernetes-validate has no schema for (it warns and passes them);
/// [`prometheus_operator_check`] validates them instead.
const CUSTOM_KINDS: &[&str] = &["ServiceMonitor", "PrometheusRule"];

fn kubernetes_manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    files
}

/// `kubernetes-validate --strict` over `files`; Err with its output when a
/// resource fails, or when it only warned about a kind that no CRD check
/// covers (its warning passes silently otherwise).
fn kubernetes_validate(files: &[PathBuf]) -> Result<String, String> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--strict".as_ref()];
    for v in KUBERNETES_VERSIONS {
        args.push("--kubernetes-version".as_ref());
        args.push(v.as_ref());
    }
    args.extend(files.iter().map(|f| f.as_os_str()));
    let out = venv_tool("kubernetes-validate", &args);
    let text = stdout_and_stderr(&out);
    let unchecked: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("WARN"))
        .filter(|l| {
            !CUSTOM_KINDS
                .iter()
                .any(|k| l.contains(&format!("kind {k} ")))
        })
        .collect();
    if !out.status.success() || text.contains("ERROR") || !unchecked.is_empty() {
        return Err(text);
    }
    Ok(text)
}

#[test]
fn every_kubernetes_manifest_passes_kubernetes_validate_strict() {
    let files = kubernetes_manifests();
    let text = kubernetes_validate(&files).unwrap_or_else(|e| panic!("{e}"));
    // Every built-in resource passed for every version.
    let passed = text.lines().filter(|l| l.contains(" passed for ")).count();
    let builtin: usize = files
        .iter()
        .flat_map(|f| yaml_documents(&std::fs::read_to_string(f).unwrap()))
        .filter(|d| !CUSTOM_KINDS.contains(&d["kind"].as_str().unwrap()))
        .count();
    assert_eq!(passed, builtin * KUBERNETES_VERSIONS.len(), "{text}");
}

/// Validates the custom resources (apiVersion monitoring.coreos.com/*) of the
/// given files against the schemas of `tests/data/prometheus-operator/
/// schema.py`, made strict the way kubernetes-validate's strict schemas are
/// (additionalProperties false wherever properties are listed). Prints one
/// OK line per resource; exits 1 on any error.
const CRD_CHECK: &str = r#"
import runpy, sys, yaml, jsonschema

def strict(schema):
    if not isinstance(schema, dict):
        return schema
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for sub in schema.get("properties", {}).values():
        strict(sub)
    for key in ("items", "additionalProperties", "not"):
        strict(schema.get(key))
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            strict(sub)
    return schema

schema_file, files = sys.argv[1], sys.argv[2:]
schemas = {k: strict(v) for k, v in runpy.run_path(schema_file)["SCHEMAS"].items()}

errors = 0
for path in files:
    for doc in yaml.safe_load_all(open(path)):
        if not doc or not str(doc.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
            continue
        key = (doc["apiVersion"], doc["kind"])
        name = f'{path}: {doc["kind"]}/{doc.get("metadata", {}).get("name")}'
        if key not in schemas:
            print(f"ERROR {name}: no schema for {key}")
            errors += 1
            continue
        found = list(jsonschema.Draft7Validator(schemas[key]).iter_errors(doc))
        for e in found:
            where = ".".join(str(p) for p in e.absolute_path)
            print(f"ERROR {name}: {where}: {e.message}")
        errors += len(found)
        if not found:
            print(f"OK {name}")
sys.exit(1 if errors else 0)
"#;

/// Runs [`CRD_CHECK`] on `files`; Ok(its output) when every custom resource
/// passed.
fn prometheus_operator_check(files: &[PathBuf]) -> Result<String, String> {
    let schema = repo().join("tests/data/prometheus-operator/schema.py");
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["-c".as_ref(), CRD_CHECK.as_ref(), schema.as_os_str()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let out = venv_tool("python", &args);
    let text = stdout_and_stderr(&out);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn servicemonitors_and_the_prometheusrule_pass_the_prometheus_operator_crds() {
    let text = prometheus_operator_check(&kubernetes_manifests()).unwrap_or_else(|e| panic!("{e}"));
    for kind in [
        "ServiceMonitor/perfwatch-shared",
        "ServiceMonitor/app-perfwatch",
        "PrometheusRule/perfwatch",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("OK ") && l.ends_with(kind)),
            "{kind} not checked:\n{text}"
        );
    }
}

/// Writes `text` with `from` replaced by `to` (which must occur) to a file
/// named like `rel` in `dir`.
fn broken_copy(dir: &Path, rel: &str, from: &str, to: &str) -> PathBuf {
    let text = read(rel);
    assert!(text.contains(from), "{rel} has no {from:?}");
    let path = dir.join(Path::new(rel).file_name().unwrap());
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn both_manifest_checks_reject_a_misspelt_field() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = broken_copy(
        dir.path(),
        "deploy/kubernetes/sidecar-deployment.yaml",
        "livenessProbe:",
        "livenesProbe:",
    );
    let err = kubernetes_validate(&[deployment]).expect_err("a misspelt livenessProbe passed");
    assert!(err.contains("livenesProbe"), "{err}");

    let monitor = broken_copy(
        dir.path(),
        "deploy/kubernetes/sidecar-servicemonitor.yaml",
        "scrapeTimeout:",
        "scrapeTimout:",
    );
    let err = prometheus_operator_check(std::slice::from_ref(&monitor))
        .expect_err("a misspelt scrapeTimeout passed");
    assert!(err.contains("scrapeTimout"), "{err}");
    // And kubernetes-validate alone would have let it through: why the CRD
    // check exists.
    assert!(kubernetes_validate(&[monitor]).is_ok());
}

/// The pod template's spec and its container named `name`.
fn pod_and_container<'a>(deployment: &'a Value, name: &str) -> (&'a Value, &'a Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    let container = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"));
    (pod, container)
}

#[test]
fn the_sidecar_never_gates_the_app_pods_readiness() {
    let sidecar = yaml_file("deploy/kubernetes/sidecar-deployment.yaml");
    let shared = yaml_file("deploy/kubernetes/shared-deployment.yaml");
    let (side_pod, side) = pod_and_container(&sidecar, "perfwatch");
    let (shared_pod, shared_container) = pod_and_container(&shared, "perfwatch");
    // A pod is Ready only when all its containers are: the sidecar has no
    // readiness check at all, so it can never take the app out of service.
    assert!(
        side.get("readinessProbe").is_none(),
        "the sidecar has a readinessProbe: {}",
        side["readinessProbe"]
    );
    for (what, pod, c) in [
        ("sidecar", side_pod, side),
        ("shared", shared_pod, shared_container),
    ] {
        for probe in ["livenessProbe", "startupProbe"] {
            assert_eq!(
                c[probe]["httpGet"]["path"], "/-/healthy",
                "{what} {probe} is not on /-/healthy"
            );
        }
        assert_eq!(
            pod["automountServiceAccountToken"],
            Value::Bool(false),
            "{what}: the API token is mounted"
        );
        for r in ["cpu", "memory"] {
            assert!(
                c["resources"]["requests"][r].is_string(),
                "{what}: no {r} request"
            );
        }
    }
    // The shared perfwatch serves Prometheus only: there /-/ready belongs.
    assert_eq!(
        shared_container["readinessProbe"]["httpGet"]["path"],
        "/-/ready"
    );
}

#[test]
fn servicemonitors_and_the_prometheusrule_carry_one_prometheus_selector_label() {
    let labels: Vec<Value> = [
        "sidecar-servicemonitor",
        "shared-servicemonitor",
        "prometheusrule",
    ]
    .map(|f| yaml_file(&format!("deploy/kubernetes/{f}.yaml")))
    .iter()
    .map(|m| m["metadata"]["labels"]["release"].clone())
    .collect();
    assert!(labels[0].is_string(), "no release label: {labels:?}");
    assert!(
        labels.iter().all(|l| *l == labels[0]),
        "the ServiceMonitors and the PrometheusRule disagree: {labels:?}"
    );
}

// ------------------------------------------------------------ systemd

/// `systemd-analyze verify` of `unit` with the binary path pointed at the
/// test build (verify fails on a missing executable). It exits 0 after
/// warnings such as an unknown key, so any output counts as a failure.
fn systemd_verify(unit_text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("perfwatch.service");
    assert!(unit_text.contains("/usr/local/bin/perfwatch"));
    std::fs::write(
        &unit,
        unit_text.replace("/usr/local/bin/perfwatch", env!("CARGO_BIN_EXE_perfwatch")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze not found ({e}): apt-get install -y systemd (or run scripts/install-test-deps.sh)")
        });
    let text = stdout_and_stderr(&out);
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(text)
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = read("deploy/systemd/perfwatch.service");
    systemd_verify(&unit).unwrap_or_else(|e| panic!("systemd-analyze verify:\n{e}"));
    let broken = unit.replacen("StateDirectory=", "StateDirectry=", 1);
    let err = systemd_verify(&broken).expect_err("a misspelt key passed");
    assert!(err.contains("StateDirectry"), "{err}");
}

/// The value of `key=` in a unit (the last one wins, as in systemd).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

#[test]
fn the_systemd_unit_can_write_state_and_read_slow_logs() {
    let unit = read("deploy/systemd/perfwatch.service");
    assert_eq!(unit_value(&unit, "DynamicUser"), Some("yes"));
    // With DynamicUser and ProtectSystem=strict, only StateDirectory makes
    // /var/lib/<name> exist and writable for the transient user.
    let state = unit_value(&unit, "StateDirectory").expect("no StateDirectory=");
    let state_dir = format!("/var/lib/{state}/");
    let example = read("config/perfwatch.example.toml");
    let state_files: Vec<&str> = example
        .lines()
        .filter_map(|l| l.trim().strip_prefix("state_file = \""))
        .map(|v| v.trim_end_matches('"'))
        .collect();
    assert!(!state_files.is_empty());
    for f in state_files {
        assert!(
            f.starts_with(&state_dir),
            "the example's state_file {f} is not under {state_dir}, which StateDirectory= makes writable"
        );
    }
    // Debian's MySQL/MariaDB and PostgreSQL logs are group adm, mode 0640.
    let groups = unit_value(&unit, "SupplementaryGroups").expect("no SupplementaryGroups=");
    assert!(groups.split_whitespace().any(|g| g == "adm"), "{groups}");
}

// ------------------------------------------------------------ compose

#[test]
fn compose_prometheus_and_alertmanager_have_their_own_network_namespace() {
    let compose = yaml_file("deploy/docker-compose.yml");
    let services = compose["services"].as_object().unwrap();
    for (name, service) in services {
        assert!(
            service.get("network_mode").is_none(),
            "{name} shares another network namespace: recreating that service cuts {name} off"
        );
    }
    // The Prometheus config the stack mounts reaches perfwatch and
    // Alertmanager by service name, and each publishes its own port.
    let prometheus = &services["prometheus"];
    let mounted = prometheus["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|v| v.strip_suffix(":/etc/prometheus/prometheus.yml:ro"))
        .expect("prometheus.yml not mounted");
    let config = yaml_file(&format!("deploy/{mounted}"));
    let scrape: Vec<&Value> = config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["static_configs"][0]["targets"].as_array().unwrap())
        .collect();
    assert_eq!(scrape, [&Value::from("perfwatch:9896")]);
    assert_eq!(
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"],
        serde_json::json!(["alertmanager:9093"])
    );
    for (service, port) in [
        ("perfwatch", "9896"),
        ("prometheus", "9090"),
        ("alertmanager", "9093"),
    ] {
        let ports = services[service]["ports"].as_array().unwrap();
        assert!(
            ports.contains(&Value::from(format!("{port}:{port}"))),
            "{service} does not publish {port}: {ports:?}"
        );
    }
}
