//! Works out what `infra/template.yaml` gives a deployment, as CloudFormation would, for the
//! template's contract tests: the intrinsic functions the template uses (`!Ref`, `!Sub`,
//! `!Join`, `!Select`, `!Split`, `!If`, `!GetAtt`) and its conditions and rules. A parameter
//! takes the value a test gives, else its default; a resource's `!Ref` or `!GetAtt` takes the
//! value a test gives for it (e.g. `RegistrationClient` or `Web.DomainName`). The stack is
//! `sspr` in us-east-1.

use serde_yaml::Value as Yaml;

/// The pseudo parameters, for a stack `sspr` in us-east-1 of account 123456789012.
const PSEUDO: [(&str, &str); 5] = [
    ("AWS::Region", "us-east-1"),
    ("AWS::URLSuffix", "amazonaws.com"),
    ("AWS::StackName", "sspr"),
    ("AWS::Partition", "aws"),
    ("AWS::AccountId", "123456789012"),
];

/// The tag of a CloudFormation short form (`If` for `!If`) and its argument.
pub fn tagged(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(tagged) => Some((tagged.tag.to_string().trim_start_matches('!').to_owned(), &tagged.value)),
        _ => None,
    }
}

/// What `name` (a parameter, a pseudo parameter, a resource or `Resource.Attribute`) stands for.
fn lookup(template: &Yaml, name: &str, values: &[(&str, &str)]) -> String {
    if let Some((_, v)) = values.iter().find(|(n, _)| *n == name) {
        return (*v).to_owned();
    }
    if let Some((_, v)) = PSEUDO.iter().find(|(n, _)| *n == name) {
        return (*v).to_owned();
    }
    let default = &template["Parameters"][name]["Default"];
    assert!(!default.is_null(), "template: {name} needs a value in this test");
    text(template, default, values)
}

/// `!Sub`'s string with each `${name}` replaced: by `variables` first, then as `lookup` says.
fn substitute(template: &Yaml, pattern: &str, variables: Option<&Yaml>, values: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap_or_else(|| panic!("template: unclosed ${{ in {pattern}")) + start;
        let name = &rest[start + 2..end];
        match variables.map(|v| &v[name]).filter(|v| !v.is_null()) {
            Some(value) => out.push_str(&text(template, value, values)),
            None => out.push_str(&lookup(template, name, values)),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A string the template works out: a literal, `!Ref`, `!Sub`, `!GetAtt`, `!If`, or `!Join`
/// (of a list, or of a list parameter).
pub fn text(template: &Yaml, value: &Yaml, values: &[(&str, &str)]) -> String {
    match value {
        Yaml::String(s) => return s.clone(),
        Yaml::Number(n) => return n.to_string(),
        Yaml::Bool(b) => return b.to_string(),
        _ => {}
    }
    match tagged(value) {
        Some((tag, argument)) if tag == "Ref" => {
            lookup(template, argument.as_str().expect("!Ref names something"), values)
        }
        Some((tag, argument)) if tag == "GetAtt" => {
            let name = match argument.as_sequence() {
                Some(parts) => parts
                    .iter()
                    .map(|p| p.as_str().expect("!GetAtt [resource, attribute]"))
                    .collect::<Vec<_>>()
                    .join("."),
                None => argument.as_str().expect("!GetAtt resource.attribute").to_owned(),
            };
            lookup(template, &name, values)
        }
        Some((tag, argument)) if tag == "Sub" => match argument.as_sequence() {
            Some(args) => {
                assert_eq!(args.len(), 2, "template: {value:?}");
                substitute(template, args[0].as_str().expect("!Sub [pattern, variables]"), Some(&args[1]), values)
            }
            None => substitute(template, argument.as_str().expect("!Sub pattern"), None, values),
        },
        Some((tag, _)) if tag == "If" => {
            let value =
                chosen(template, value, values).unwrap_or_else(|| panic!("template: {value:?} has no value here"));
            text(template, value, values)
        }
        Some((tag, argument)) if tag == "Join" => {
            let args = argument.as_sequence().expect("!Join [separator, list]");
            assert_eq!(args.len(), 2, "template: {value:?}");
            let separator = text(template, &args[0], values);
            list(template, &args[1], values).join(separator.as_str())
        }
        Some((tag, argument)) if tag == "Select" => {
            let args = argument.as_sequence().expect("!Select [index, list]");
            assert_eq!(args.len(), 2, "template: {value:?}");
            let index: usize = text(template, &args[0], values).parse().expect("!Select's index");
            let items = list(template, &args[1], values);
            items.get(index).unwrap_or_else(|| panic!("template: {value:?} has no item {index} in {items:?}")).clone()
        }
        _ => panic!("template: {value:?} is not worked out here"),
    }
}

/// A list the template works out: a literal list, `!Split`, or a list parameter (its
/// comma-separated value).
fn list(template: &Yaml, value: &Yaml, values: &[(&str, &str)]) -> Vec<String> {
    // Tags first: serde_yaml's accessors look through them.
    match (tagged(value), value) {
        (Some((tag, argument)), _) if tag == "Split" => {
            let args = argument.as_sequence().expect("!Split [separator, string]");
            assert_eq!(args.len(), 2, "template: {value:?}");
            let separator = text(template, &args[0], values);
            text(template, &args[1], values).split(separator.as_str()).map(str::to_owned).collect()
        }
        (None, Yaml::Sequence(items)) => items.iter().map(|item| text(template, item, values)).collect(),
        _ => text(template, value, values).split(',').map(|item| item.trim().to_owned()).collect(),
    }
}

/// Whether a condition holds: `!Equals`, `!Not`, `!And`, `!Or` and `!Condition`.
pub fn holds(template: &Yaml, condition: &Yaml, values: &[(&str, &str)]) -> bool {
    let (tag, argument) = tagged(condition).unwrap_or_else(|| panic!("template: {condition:?} is no condition"));
    let list = argument.as_sequence();
    match tag.as_str() {
        "Condition" => named(template, argument.as_str().expect("!Condition names a condition"), values),
        "Equals" => {
            let args = list.expect("!Equals [a, b]");
            assert_eq!(args.len(), 2, "template: {condition:?}");
            text(template, &args[0], values) == text(template, &args[1], values)
        }
        "Not" => !holds(template, &list.expect("!Not [condition]")[0], values),
        "And" => list.expect("!And [conditions]").iter().all(|c| holds(template, c, values)),
        "Or" => list.expect("!Or [conditions]").iter().any(|c| holds(template, c, values)),
        other => panic!("template: !{other} is no condition"),
    }
}

/// Whether the template's condition `name` holds.
pub fn named(template: &Yaml, name: &str, values: &[(&str, &str)]) -> bool {
    let condition = &template["Conditions"][name];
    assert!(!condition.is_null(), "template: no condition {name}");
    holds(template, condition, values)
}

/// The value `value` takes in a deployment, through `!If`: `None` for `AWS::NoValue`.
pub fn chosen<'v>(template: &Yaml, value: &'v Yaml, values: &[(&str, &str)]) -> Option<&'v Yaml> {
    match tagged(value) {
        Some((tag, argument)) if tag == "If" => {
            let args = argument.as_sequence().expect("!If [condition, then, else]");
            assert_eq!(args.len(), 3, "template: {value:?}");
            let name = args[0].as_str().expect("!If names a condition");
            chosen(template, &args[if named(template, name, values) { 1 } else { 2 }], values)
        }
        Some((tag, argument)) if tag == "Ref" && argument.as_str() == Some("AWS::NoValue") => None,
        _ => Some(value),
    }
}

/// Whether a resource is created in a deployment: it has no `Condition`, or its condition holds.
pub fn created(template: &Yaml, resource: &str, values: &[(&str, &str)]) -> bool {
    let declared = &template["Resources"][resource];
    assert!(!declared.is_null(), "template: no resource {resource}");
    declared["Condition"].as_str().is_none_or(|condition| named(template, condition, values))
}

/// The rule assertions of `rule` that fail in a deployment (their descriptions).
pub fn refused(template: &Yaml, rule: &str, values: &[(&str, &str)]) -> Vec<String> {
    let declared = &template["Rules"][rule];
    assert!(!declared.is_null(), "template: no rule {rule}");
    if !declared["RuleCondition"].is_null() && !holds(template, &declared["RuleCondition"], values) {
        return Vec::new();
    }
    declared["Assertions"]
        .as_sequence()
        .expect("Assertions")
        .iter()
        .filter(|a| !holds(template, &a["Assert"], values))
        .map(|a| a["AssertDescription"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Every statement of the inline policies of the template's resources, with its resource's name.
pub fn policy_statements(template: &Yaml) -> Vec<(&str, &Yaml)> {
    let mut all = Vec::new();
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        let Some(policies) = resource["Properties"]["Policies"].as_sequence() else { continue };
        let name = name.as_str().expect("a resource name");
        all.extend(policies.iter().filter_map(|p| p["Statement"].as_sequence()).flatten().map(|s| (name, s)));
    }
    all
}

/// The README's "Deploy to AWS" section, its subsections included.
pub fn readme_deploy_section() -> String {
    let readme = std::fs::read_to_string(crate::repo_root().join("README.md")).expect("README.md");
    let deploy = readme.split("\n## Deploy to AWS").nth(1).expect("a Deploy to AWS section");
    deploy.split("\n## ").next().expect("the section").to_owned()
}
