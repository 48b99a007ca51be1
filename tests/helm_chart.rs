//! The Helm chart in helm/rdv, rendered without helm (none can be installed here): every
//! template goes through gtmpl, a Go-template engine, with the chart's values.yaml (plus
//! overrides, as `helm install -f` would merge them) and Release and Chart objects like Helm's.
//! The Helm functions the chart uses are implemented below with Helm's (sprig's) meaning, and
//! values are converted as Helm loads them (numbers become floats). Each rendered manifest is
//! then parsed as YAML and its structure checked: kinds and apiVersions, selectors against pod
//! labels, the container's image, ports, probes, environment and security context, the
//! anti-affinity that goes with the host's network, and what each override changes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gtmpl::{Context, Func, FuncError, Template, Value};
use serde::Deserialize as _;
use serde_yaml_ng::Value as Yaml;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const DATABASE_URL: &str = "postgres://rdv:secret@postgres.db.svc:5432/rdv";

// ---------------------------------------------------------------------------------------------
// Helm's functions (sprig's), as far as the chart uses them.

/// The Helm functions the chart may call, each with sprig's meaning.
const HELM_FUNCS: &[(&str, Func)] = &[
    ("quote", quote),
    ("default", default),
    ("toYaml", to_yaml),
    ("indent", indent),
    ("nindent", nindent),
    ("b64enc", b64enc),
    ("add", add),
    ("int", int),
    ("required", required),
    ("join", join),
    ("trunc", trunc),
    ("trimSuffix", trim_suffix),
];

fn error(message: String) -> FuncError {
    FuncError::Generic(message)
}

fn exactly(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() == n { Ok(()) } else { Err(FuncError::ExactlyXArgs(name.into(), n)) }
}

/// sprig's `strval`: a value as Go's `%v` prints it (a float without a fraction has no point).
fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Nil | Value::NoValue => String::new(),
        other => other.to_string(),
    }
}

/// Go's `%q`: a double-quoted string with Go escapes.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// sprig's emptiness, as `default` and `required` judge it.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Nil | Value::NoValue => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.as_i64() == Some(0), |f| f == 0.0),
        Value::Function(_) => false,
    }
}

/// sprig's `toInt64`: numbers (floats truncated) and numeric strings.
fn to_i64(value: &Value) -> Result<i64, FuncError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().and_then(|u| i64::try_from(u).ok()))
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| error(format!("not an integer: {n}"))),
        Value::String(s) => s.parse().map_err(|_| error(format!("not an integer: {s:?}"))),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Nil | Value::NoValue => Ok(0),
        other => Err(error(format!("not an integer: {other}"))),
    }
}

/// `quote ARG...`: each argument as a double-quoted string, separated by spaces.
fn quote(args: &[Value]) -> Result<Value, FuncError> {
    let quoted: Vec<String> = args
        .iter()
        .filter(|a| !matches!(a, Value::Nil | Value::NoValue))
        .map(|a| go_quote(&strval(a)))
        .collect();
    Ok(Value::from(quoted.join(" ")))
}

/// `default DEFAULT VALUE`: VALUE unless it is empty.
fn default(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [fallback] => Ok(fallback.clone()),
        [fallback, given, ..] => Ok(if is_empty(given) { fallback } else { given }.clone()),
        [] => Err(FuncError::AtLeastXArgs("default".into(), 1)),
    }
}

/// `required MESSAGE VALUE`: VALUE, or the rendering fails with MESSAGE.
fn required(args: &[Value]) -> Result<Value, FuncError> {
    exactly("required", args, 2)?;
    match &args[1] {
        Value::Nil | Value::NoValue => Err(error(strval(&args[0]))),
        Value::String(s) if s.is_empty() => Err(error(strval(&args[0]))),
        value => Ok(value.clone()),
    }
}

/// A template value back to YAML. Helm's values are JSON numbers (floats): a float without a
/// fraction is written as an integer, as Helm's toYaml does.
fn yaml_of(value: &Value) -> Result<Yaml, FuncError> {
    Ok(match value {
        Value::Nil | Value::NoValue => Yaml::Null,
        Value::Bool(b) => Yaml::Bool(*b),
        Value::String(s) => Yaml::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Yaml::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Yaml::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    Yaml::Number((f as i64).into())
                } else {
                    Yaml::Number(f.into())
                }
            }
        }
        Value::Array(items) => Yaml::Sequence(items.iter().map(yaml_of).collect::<Result<_, _>>()?),
        Value::Map(map) | Value::Object(map) => {
            // Helm writes maps with their keys sorted.
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            let mut mapping = serde_yaml_ng::Mapping::new();
            for (k, v) in sorted {
                mapping.insert(Yaml::String(k.clone()), yaml_of(v)?);
            }
            Yaml::Mapping(mapping)
        }
        Value::Function(_) => return Err(error("toYaml of a function".into())),
    })
}

/// `toYaml VALUE`: VALUE as a YAML document, without its final newline.
fn to_yaml(args: &[Value]) -> Result<Value, FuncError> {
    exactly("toYaml", args, 1)?;
    let text = serde_yaml_ng::to_string(&yaml_of(&args[0])?).map_err(|e| error(e.to_string()))?;
    Ok(Value::from(text.trim_end_matches('\n').to_string()))
}

fn indented(args: &[Value], name: &str) -> Result<String, FuncError> {
    exactly(name, args, 2)?;
    let width = usize::try_from(to_i64(&args[0])?).map_err(|e| error(e.to_string()))?;
    let pad = " ".repeat(width);
    Ok(format!("{pad}{}", strval(&args[1]).replace('\n', &format!("\n{pad}"))))
}

/// `indent N TEXT`: every line of TEXT indented by N spaces.
fn indent(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(indented(args, "indent")?))
}

/// `nindent N TEXT`: a newline, then `indent N TEXT`.
fn nindent(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(format!("\n{}", indented(args, "nindent")?)))
}

/// `b64enc TEXT`: standard base64.
fn b64enc(args: &[Value]) -> Result<Value, FuncError> {
    exactly("b64enc", args, 1)?;
    Ok(Value::from(BASE64.encode(strval(&args[0]))))
}

/// `add A B...`: the sum, as an integer.
fn add(args: &[Value]) -> Result<Value, FuncError> {
    let mut sum = 0i64;
    for a in args {
        sum = sum.checked_add(to_i64(a)?).ok_or_else(|| error("add overflows".into()))?;
    }
    Ok(Value::from(sum))
}

/// `int VALUE`: VALUE as an integer.
fn int(args: &[Value]) -> Result<Value, FuncError> {
    exactly("int", args, 1)?;
    Ok(Value::from(to_i64(&args[0])?))
}

/// `join SEPARATOR LIST`: the list's items as strings, joined.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    exactly("join", args, 2)?;
    let items: Vec<String> = match &args[1] {
        Value::Array(items) => {
            items.iter().filter(|i| !matches!(i, Value::Nil | Value::NoValue)).map(strval).collect()
        }
        other => vec![strval(other)],
    };
    Ok(Value::from(items.join(&strval(&args[0]))))
}

/// `trunc N TEXT`: the first N characters of TEXT.
fn trunc(args: &[Value]) -> Result<Value, FuncError> {
    exactly("trunc", args, 2)?;
    let n = to_i64(&args[0])?;
    let s = strval(&args[1]);
    let count = s.chars().count();
    let kept: String = if n >= 0 {
        s.chars().take(usize::try_from(n).unwrap_or(usize::MAX)).collect()
    } else {
        let from_end = usize::try_from(-n).unwrap_or(usize::MAX);
        s.chars().skip(count.saturating_sub(from_end)).collect()
    };
    Ok(Value::from(kept))
}

/// `trimSuffix SUFFIX TEXT`: TEXT without SUFFIX at its end.
fn trim_suffix(args: &[Value]) -> Result<Value, FuncError> {
    exactly("trimSuffix", args, 2)?;
    let suffix = strval(&args[0]);
    let s = strval(&args[1]);
    Ok(Value::from(s.strip_suffix(suffix.as_str()).unwrap_or(&s).to_string()))
}

// ---------------------------------------------------------------------------------------------
// The chart, its values and Helm's built-in objects.

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/rdv")
}

fn read_yaml(path: &Path) -> Yaml {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML value as Helm hands it to templates: maps, lists, strings, booleans, and numbers
/// as floats (Helm reads values through JSON).
fn template_value(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Nil,
        Yaml::Bool(b) => Value::from(*b),
        Yaml::Number(n) => Value::from(n.as_f64().unwrap()),
        Yaml::String(s) => Value::from(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(template_value).collect()),
        Yaml::Mapping(mapping) => Value::Map(
            mapping
                .iter()
                .map(|(k, v)| (yaml_key(k), template_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
        Yaml::Tagged(tagged) => template_value(&tagged.value),
    }
}

fn yaml_key(key: &Yaml) -> String {
    match key {
        Yaml::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).unwrap().trim_end().to_string(),
    }
}

/// Helm's merge of a values file over the chart's values: maps merge key by key, anything
/// else replaces.
fn merge(base: &mut Yaml, over: &Yaml) {
    match (base, over) {
        (Yaml::Mapping(base), Yaml::Mapping(over)) => {
            for (k, v) in over {
                match base.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The chart's values.yaml with `overrides` (a YAML map) merged over it.
fn values(overrides: &str) -> Yaml {
    let mut values = read_yaml(&chart_dir().join("values.yaml"));
    let overrides: Yaml = serde_yaml_ng::from_str(overrides).unwrap();
    if !overrides.is_null() {
        merge(&mut values, &overrides);
    }
    values
}

/// Helm's `.Chart`: Chart.yaml's fields under their Go names.
fn chart_object() -> Value {
    let chart = read_yaml(&chart_dir().join("Chart.yaml"));
    let mut object = HashMap::new();
    for (field, name) in [
        ("apiVersion", "APIVersion"),
        ("name", "Name"),
        ("version", "Version"),
        ("appVersion", "AppVersion"),
        ("description", "Description"),
        ("type", "Type"),
    ] {
        let value = chart[field].as_str().unwrap_or_else(|| panic!("Chart.yaml has no {field}"));
        object.insert(name.to_string(), Value::from(value.to_string()));
    }
    Value::Map(object)
}

/// Helm's `.Release` for `helm install NAME` into namespace "jami".
fn release_object(name: &str) -> Value {
    let mut object = HashMap::new();
    object.insert("Name".to_string(), Value::from(name.to_string()));
    object.insert("Namespace".to_string(), Value::from("jami".to_string()));
    object.insert("Service".to_string(), Value::from("Helm".to_string()));
    object.insert("IsInstall".to_string(), Value::from(true));
    object.insert("IsUpgrade".to_string(), Value::from(false));
    object.insert("Revision".to_string(), Value::from(1u64));
    Value::Map(object)
}

/// The chart's files under templates/, sorted: (name, text).
fn template_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(chart_dir().join("templates"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            (name, fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The chart rendered: each template's output by file name, or the first error.
fn render(release: &str, overrides: &str) -> Result<BTreeMap<String, String>, String> {
    let mut root = HashMap::new();
    root.insert("Values".to_string(), template_value(&values(overrides)));
    root.insert("Release".to_string(), release_object(release));
    root.insert("Chart".to_string(), chart_object());
    let root = Value::Map(root);

    let files = template_files();
    // Files starting with "_" only define named templates; Helm renders no output for them.
    let (helpers, templates): (Vec<_>, Vec<_>) =
        files.iter().partition(|(n, _)| n.starts_with('_'));
    assert!(!helpers.is_empty(), "the chart has no _helpers.tpl");
    let mut out = BTreeMap::new();
    for (name, text) in templates {
        let mut template = Template::with_name(name.clone());
        // Functions first: the parser only accepts the names it knows.
        template.add_funcs(HELM_FUNCS);
        for (helper, helper_text) in &helpers {
            template
                .add_template(helper.clone(), helper_text.clone())
                .unwrap_or_else(|e| panic!("{helper}: {e}"));
        }
        template.parse(text.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rendered =
            template.render(&Context::from(root.clone())).map_err(|e| format!("{name}: {e}"))?;
        out.insert(name.clone(), rendered);
    }
    Ok(out)
}

/// The chart rendered and its manifests parsed, as Helm splits them (on `---`).
fn manifests(release: &str, overrides: &str) -> Vec<Yaml> {
    let rendered = render(release, overrides).unwrap();
    let mut docs = Vec::new();
    for (name, text) in &rendered {
        assert!(
            !text.contains("<no value>"),
            "{name} uses a value the chart does not define:\n{text}"
        );
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let doc = Yaml::deserialize(doc)
                .unwrap_or_else(|e| panic!("{name} is not YAML: {e}\n{text}"));
            if !doc.is_null() {
                docs.push(doc);
            }
        }
    }
    docs
}

// ---------------------------------------------------------------------------------------------
// Looking into manifests.

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

fn named<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} named {name}"))
}

fn str_map(yaml: &Yaml) -> BTreeMap<String, String> {
    yaml.as_mapping()
        .unwrap_or_else(|| panic!("not a map: {yaml:?}"))
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap_or_else(|| panic!("{v:?}")).to_string(),
            )
        })
        .collect()
}

/// `selector` picks pods with `labels`: every selector label is there with its value.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    let (selector, labels) = (str_map(selector), str_map(labels));
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn container(deployment: &Yaml) -> &Yaml {
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn env_var<'a>(container: &'a Yaml, name: &str) -> Option<&'a Yaml> {
    container["env"].as_sequence().unwrap().iter().find(|e| e["name"] == name)
}

fn env_value(container: &Yaml, name: &str) -> String {
    let var = env_var(container, name).unwrap_or_else(|| panic!("no {name} in the environment"));
    var["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no string value: {var:?}"))
        .to_string()
}

/// The Secret and key an environment variable is taken from.
fn env_secret(container: &Yaml, name: &str) -> (String, String) {
    let var = env_var(container, name).unwrap_or_else(|| panic!("no {name} in the environment"));
    let secret = &var["valueFrom"]["secretKeyRef"];
    (
        secret["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} is not from a Secret"))
            .to_string(),
        secret["key"].as_str().unwrap().to_string(),
    )
}

fn port<'a>(container: &'a Yaml, name: &str) -> &'a Yaml {
    container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name}"))
}

fn secret_entry(secret: &Yaml, key: &str) -> Option<String> {
    secret["data"][key].as_str().map(|b64| String::from_utf8(BASE64.decode(b64).unwrap()).unwrap())
}

/// The configuration keys rdv knows, as environment variable names, from rdv.example.toml
/// (which lists every key): `[cluster] drain_seconds` is RDV_CLUSTER__DRAIN_SECONDS.
fn known_rdv_variables() -> BTreeSet<String> {
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rdv.example.toml")).unwrap();
    let mut section = String::new();
    let mut names = BTreeSet::new();
    for line in example.lines().map(str::trim) {
        if let Some(table) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = table.to_string();
        } else if let Some((key, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            let key = key.trim().to_uppercase();
            names.insert(if section.is_empty() {
                format!("RDV_{key}")
            } else {
                format!("RDV_{}__{key}", section.to_uppercase())
            });
        }
    }
    assert!(
        names.contains("RDV_CLUSTER__DRAIN_SECONDS") && names.contains("RDV_DATA_DIR"),
        "{names:?}"
    );
    names
}

/// Checks that hold for any rendering: labels, selectors, ports named consistently,
/// environment values as strings and naming rdv's keys, probes, security.
fn check_common(docs: &[Yaml], release: &str) {
    let deployment = one(docs, "Deployment");
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert!(selects(selector, pod_labels), "the Deployment's selector does not match its pods");
    assert_eq!(str_map(selector)["app.kubernetes.io/instance"], release);

    for doc in docs {
        let labels = str_map(&doc["metadata"]["labels"]);
        assert_eq!(labels["app.kubernetes.io/name"], "rdv", "{doc:?}");
        assert_eq!(labels["app.kubernetes.io/instance"], release);
        assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
        assert_eq!(labels["helm.sh/chart"], "rdv-0.1.0");
        assert_eq!(labels["app.kubernetes.io/version"], "0.1.0");
        let expected_api = match doc["kind"].as_str().unwrap() {
            "Deployment" => "apps/v1",
            "Service" | "Secret" => "v1",
            "PodDisruptionBudget" => "policy/v1",
            other => panic!("unexpected kind {other}"),
        };
        assert_eq!(doc["apiVersion"], expected_api);
    }

    let c = container(deployment);
    for service in of_kind(docs, "Service") {
        assert!(
            selects(&service["spec"]["selector"], pod_labels),
            "{service:?} selects no rdv pod"
        );
        for p in service["spec"]["ports"].as_sequence().unwrap() {
            let target = port(c, p["targetPort"].as_str().unwrap());
            assert_eq!(target["protocol"], p["protocol"], "{p:?}");
        }
    }
    for pdb in of_kind(docs, "PodDisruptionBudget") {
        assert!(selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels));
        assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    }

    // The environment: strings only; each RDV_ name one of rdv's keys (a typo would be an
    // unknown key, which rdv refuses at start).
    let known = known_rdv_variables();
    for var in c["env"].as_sequence().unwrap() {
        let name = var["name"].as_str().unwrap();
        assert!(
            !name.starts_with("RDV_") || known.contains(name),
            "{name} is not one of rdv's settings"
        );
        assert!(var["value"].is_string() || var["valueFrom"].is_mapping(), "{var:?}");
    }
    let replica = env_var(c, "RDV_CLUSTER__REPLICA").unwrap();
    assert_eq!(replica["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    assert_eq!(env_value(c, "RDV_DATA_DIR"), "/var/lib/rdv/data");
    assert_eq!(env_value(c, "RDV_LOG__FORMAT"), "json");

    // The API listens where the probes knock: the port named "api".
    let api_port = port(c, "api")["containerPort"].as_u64().unwrap();
    assert_eq!(env_value(c, "RDV_API__LISTEN"), format!("0.0.0.0:{api_port}"));
    let metrics_port = port(c, "metrics")["containerPort"].as_u64().unwrap();
    assert_eq!(env_value(c, "RDV_METRICS__LISTEN"), format!("0.0.0.0:{metrics_port}"));
    let dht = port(c, "dht");
    assert_eq!(dht["protocol"], "UDP");
    assert_eq!(env_value(c, "RDV_DHT__PORT"), dht["containerPort"].as_u64().unwrap().to_string());
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "api", "{probe}");
        assert!(c[probe]["periodSeconds"].as_u64().unwrap() > 0);
    }

    // Drain before the kill.
    let drain: u64 = env_value(c, "RDV_CLUSTER__DRAIN_SECONDS").parse().unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert_eq!(grace, drain + 30);

    // Not root, nothing written outside the volumes.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    let data = mounts
        .iter()
        .find(|m| m["mountPath"] == "/var/lib/rdv")
        .expect("no volume at /var/lib/rdv");
    let volume =
        pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == data["name"]).unwrap();
    assert!(volume["emptyDir"].is_mapping(), "{volume:?}");

    // Requests and limits.
    for (kind, key) in
        [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")]
    {
        assert!(c["resources"][kind][key].is_string(), "resources.{kind}.{key} is not set");
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// The chart's values with only the admin token and the database URL given, as
/// `helm install rdv helm/rdv --set api.adminToken=... --set database.url=...`.
fn defaults() -> String {
    format!("api: {{adminToken: {TOKEN}}}\ndatabase: {{url: \"{DATABASE_URL}\"}}\n")
}

#[test]
fn default_values_render_two_replicas_on_the_hosts_network() {
    let docs = manifests("rdv", &defaults());
    check_common(&docs, "rdv");
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["Deployment", "PodDisruptionBudget", "Secret", "Service"]));
    assert_eq!(of_kind(&docs, "Service").len(), 1, "only the in-cluster Service by default");

    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["metadata"]["name"], "rdv");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 0);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    // With the host's network, never two replicas on one node.
    let anti = &pod["affinity"]["podAntiAffinity"];
    assert!(anti["preferredDuringSchedulingIgnoredDuringExecution"].is_null());
    let term = &anti["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
    assert!(selects(
        &term["labelSelector"]["matchLabels"],
        &deployment["spec"]["template"]["metadata"]["labels"]
    ));
    assert_eq!(pod["terminationGracePeriodSeconds"], 90);

    let c = container(deployment);
    assert_eq!(c["image"], "rdv:0.1.0");
    assert_eq!(port(c, "api")["containerPort"], 8474);
    assert_eq!(port(c, "api")["protocol"], "TCP");
    assert_eq!(port(c, "metrics")["containerPort"], 9474);
    assert_eq!(port(c, "dht")["containerPort"], 4222);
    assert_eq!(env_value(c, "RDV_CLUSTER__DRAIN_SECONDS"), "60");
    assert_eq!(env_value(c, "RDV_CLUSTER__LEASE_SECONDS"), "15");
    assert!(
        env_var(c, "RDV_DHT__BOOTSTRAP").is_none() && env_var(c, "RDV_LINK__ADDRESSES").is_none()
    );
    assert_eq!(c["resources"]["requests"]["cpu"], "250m");
    assert_eq!(c["resources"]["requests"]["memory"], "128Mi");
    assert_eq!(c["resources"]["limits"]["cpu"], "2");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");

    // The token and the URL come from the chart's Secret.
    let secret = one(&docs, "Secret");
    assert_eq!(secret["metadata"]["name"], "rdv");
    assert_eq!(env_secret(c, "RDV_DATABASE__URL"), ("rdv".into(), "database-url".into()));
    assert_eq!(env_secret(c, "RDV_API__ADMIN_TOKEN"), ("rdv".into(), "admin-token".into()));
    assert_eq!(secret_entry(secret, "database-url").as_deref(), Some(DATABASE_URL));
    assert_eq!(secret_entry(secret, "admin-token").as_deref(), Some(TOKEN));
    assert!(
        env_var(c, "RDV_API__ADMIN_TOKEN").unwrap()["value"].is_null(),
        "the token is not in the pod spec"
    );

    let service = named(&docs, "Service", "rdv");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    let ports = service["spec"]["ports"].as_sequence().unwrap();
    let by_name = |n: &str| ports.iter().find(|p| p["name"] == n).unwrap();
    assert_eq!(by_name("api")["port"], 8474);
    assert_eq!(by_name("api")["protocol"], "TCP");
    assert_eq!(by_name("metrics")["port"], 9474);

    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["metadata"]["name"], "rdv");

    let notes = &render("rdv", &defaults()).unwrap()["NOTES.txt"];
    assert!(notes.contains("exec deploy/rdv -- rdv room create lobby"), "{notes}");
}

#[test]
fn overrides_publish_node_ports_and_use_an_existing_secret() {
    let overrides = r#"
replicas: 3
hostNetwork: false
existingSecret: rdv-credentials
image: {repository: registry.example.net/rdv, tag: "2026.12"}
dht:
  port: 30422
  bootstrap: ["bootstrap.example.net:4222", "203.0.113.9:4222"]
link: {addresses: ["203.0.113.7", "203.0.113.8"]}
cluster: {drainSeconds: 120}
env: {RDV_LINK__BEACON_INTERVAL: 20, RUST_BACKTRACE: "1"}
extraEnv:
  - name: RDV_LOG__FILTER
    value: debug
apiService: {enabled: true, nodePort: 30474}
dhtService: {enabled: true, nodePort: 30422}
nodeSelector: {rdv.example.net/public: "true"}
dataVolume: {sizeLimit: 1Gi}
"#;
    let docs = manifests("conference", overrides);
    check_common(&docs, "conference");
    assert!(of_kind(&docs, "Secret").is_empty(), "an existing Secret: the chart makes none");

    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["metadata"]["name"], "conference-rdv");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(pod["hostNetwork"].is_null() && pod["dnsPolicy"].is_null(), "{pod:?}");
    let anti = &pod["affinity"]["podAntiAffinity"];
    assert!(anti["requiredDuringSchedulingIgnoredDuringExecution"].is_null());
    assert_eq!(
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(pod["terminationGracePeriodSeconds"], 150);
    assert_eq!(pod["nodeSelector"]["rdv.example.net/public"], "true");
    let data = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == "data").unwrap();
    assert_eq!(data["emptyDir"]["sizeLimit"], "1Gi");

    let c = container(deployment);
    assert_eq!(c["image"], "registry.example.net/rdv:2026.12");
    assert_eq!(
        env_secret(c, "RDV_DATABASE__URL"),
        ("rdv-credentials".into(), "database-url".into())
    );
    assert_eq!(
        env_secret(c, "RDV_API__ADMIN_TOKEN"),
        ("rdv-credentials".into(), "admin-token".into())
    );
    assert_eq!(env_value(c, "RDV_DHT__PORT"), "30422");
    assert_eq!(port(c, "dht")["containerPort"], 30422);
    assert_eq!(env_value(c, "RDV_DHT__BOOTSTRAP"), "bootstrap.example.net:4222,203.0.113.9:4222");
    assert_eq!(env_value(c, "RDV_LINK__ADDRESSES"), "203.0.113.7,203.0.113.8");
    assert_eq!(env_value(c, "RDV_CLUSTER__DRAIN_SECONDS"), "120");
    assert_eq!(env_value(c, "RDV_LINK__BEACON_INTERVAL"), "20");
    assert_eq!(env_value(c, "RUST_BACKTRACE"), "1");
    let filters: Vec<&Yaml> =
        c["env"].as_sequence().unwrap().iter().filter(|e| e["name"] == "RDV_LOG__FILTER").collect();
    assert_eq!(filters.last().unwrap()["value"], "debug", "extraEnv comes last and wins");

    assert_eq!(of_kind(&docs, "Service").len(), 3);
    assert_eq!(named(&docs, "Service", "conference-rdv")["spec"]["type"], "ClusterIP");
    let api = &named(&docs, "Service", "conference-rdv-api")["spec"];
    assert_eq!(api["type"], "NodePort");
    assert_eq!(api["ports"].as_sequence().unwrap().len(), 1);
    assert_eq!(api["ports"][0]["port"], 8474);
    assert_eq!(api["ports"][0]["nodePort"], 30474);
    assert_eq!(api["ports"][0]["protocol"], "TCP");
    let dht = &named(&docs, "Service", "conference-rdv-dht")["spec"];
    assert_eq!(dht["type"], "NodePort");
    assert_eq!(dht["externalTrafficPolicy"], "Local");
    assert_eq!(dht["ports"][0]["protocol"], "UDP");
    assert_eq!(dht["ports"][0]["port"], 30422);
    assert_eq!(dht["ports"][0]["nodePort"], 30422);
    assert_eq!(dht["ports"][0]["targetPort"], "dht");

    let notes = &render("conference", overrides).unwrap()["NOTES.txt"];
    assert!(notes.contains("Secret rdv-credentials"), "{notes}");
}

#[test]
fn load_balancers_and_a_hard_spread_without_the_hosts_network() {
    let overrides = format!(
        "{}hostNetwork: false\nantiAffinity: hard\napiService: {{enabled: true, type: LoadBalancer}}\n\
         dhtService: {{enabled: true, type: LoadBalancer}}\nservice: {{annotations: {{a.example.net/b: c}}}}\n",
        defaults()
    );
    let docs = manifests("rdv", &overrides);
    check_common(&docs, "rdv");
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    assert!(pod["hostNetwork"].is_null());
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    for name in ["rdv-api", "rdv-dht"] {
        let spec = &named(&docs, "Service", name)["spec"];
        assert_eq!(spec["type"], "LoadBalancer", "{name}");
        assert!(spec["ports"][0]["nodePort"].is_null(), "{name}: Kubernetes picks the node port");
    }
    assert_eq!(named(&docs, "Service", "rdv")["metadata"]["annotations"]["a.example.net/b"], "c");
}

#[test]
fn the_admin_token_and_for_several_replicas_the_database_are_required() {
    // values.yaml alone: no token.
    let err = render("rdv", "").unwrap_err();
    assert!(err.contains("api.adminToken is required"), "{err}");

    // Two replicas need a shared database.
    let err = render("rdv", &format!("api: {{adminToken: {TOKEN}}}\n")).unwrap_err();
    assert!(err.contains("database.url is required"), "{err}");

    // One replica may keep SQLite: no database URL anywhere.
    let docs = manifests("rdv", &format!("replicas: 1\napi: {{adminToken: {TOKEN}}}\n"));
    check_common(&docs, "rdv");
    assert_eq!(one(&docs, "Deployment")["spec"]["replicas"], 1);
    assert!(env_var(container(one(&docs, "Deployment")), "RDV_DATABASE__URL").is_none());
    assert_eq!(secret_entry(one(&docs, "Secret"), "database-url"), None);

    // An existing Secret provides both.
    let docs = manifests("rdv", "existingSecret: mine\n");
    check_common(&docs, "rdv");
    assert!(of_kind(&docs, "Secret").is_empty());
}

#[test]
fn names_follow_the_release_and_the_overrides() {
    let name = |release: &str, overrides: &str| {
        let docs = manifests(release, &format!("{}{overrides}", defaults()));
        one(&docs, "Deployment")["metadata"]["name"].as_str().unwrap().to_string()
    };
    assert_eq!(name("rdv", ""), "rdv");
    assert_eq!(name("prod", ""), "prod-rdv");
    assert_eq!(name("prod", "fullnameOverride: conference\n"), "conference");
    // At most 63 characters (a DNS label), without a dash at the end.
    let long = "release-".repeat(8);
    assert_eq!(name(&long, ""), format!("{long}-rdv")[..63]);
    assert_eq!(name(&"r".repeat(62), ""), "r".repeat(62), "truncated to 63, trailing dash trimmed");
    // The chart name in labels can be overridden too; the selector follows.
    let docs = manifests("rdv", &format!("{}nameOverride: jami-rdv\n", defaults()));
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["metadata"]["name"], "rdv-jami-rdv");
    assert_eq!(deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"], "jami-rdv");
}

#[test]
fn helm_functions_behave_like_sprig() {
    let render_one = |text: &str, values: &str| {
        let mut template = Template::with_name("t");
        template.add_funcs(HELM_FUNCS);
        template.parse(text).unwrap();
        let root = template_value(&serde_yaml_ng::from_str::<Yaml>(values).unwrap());
        template.render(&Context::from(root)).map_err(|e| e.to_string())
    };
    let ok = |text: &str, values: &str| render_one(text, values).unwrap();
    assert_eq!(
        ok(r#"{{ quote .a }} {{ quote .n }}"#, r#"{a: "say \"hi\"\n", n: 60}"#),
        r#""say \"hi\"\n" "60""#
    );
    assert_eq!(ok(r#"{{ default "x" .a }} {{ .b | default "y" }}"#, "{a: '', b: z}"), "x z");
    assert_eq!(ok("{{ add .a 30 }} {{ int .a }}", "{a: 60}"), "90 60");
    assert_eq!(
        ok("a:{{ toYaml .m | nindent 2 }}", "{m: {b: [1, x], a: 2.5}}"),
        "a:\n  a: 2.5\n  b:\n  - 1\n  - x"
    );
    assert_eq!(ok("{{ indent 2 \"a\\nb\" }}", "{}"), "  a\n  b");
    assert_eq!(ok("{{ b64enc \"rdv\" }}", "{}"), "cmR2");
    assert_eq!(ok(r#"{{ join "," .l }}"#, "{l: [a, 2]}"), "a,2");
    assert_eq!(ok(r#"{{ trimSuffix "-" (trunc 3 "ab-cd") }}"#, "{}"), "ab");
    // Values are floats in Helm, and Go's comparisons refuse a float against an integer
    // (gtmpl is laxer): the chart converts with `int` before comparing.
    assert_eq!(ok("{{ gt (int .r) 1 }}", "{r: 2}"), "true");
    let err = render_one(r#"{{ required "needed" .a }}"#, "{a: ''}").unwrap_err();
    assert!(err.contains("needed"), "{err}");
}
