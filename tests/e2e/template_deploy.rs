//! What a first deploy of `infra/template.yaml` depends on, checked against how AWS behaves
//! where that can be checked without an account: alarms that can reach their topic, the SES
//! identity created or used as it is, API errors that CloudFront does not cache, the web bucket
//! kept when the stack goes, and the functions' log levels.

use serde_yaml::Value as Yaml;

use crate::cfn::{chosen, created, policy_statements, readme_deploy_section, tagged, text};
use crate::template;

fn deployment(more: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut values = vec![
        ("UserPoolId", "us-east-1_AbCdEf123"),
        ("UserPoolDomainPrefix", "example-sspr"),
        ("EmailIdentity", "example.com"),
        ("EmailFrom", "noreply@example.com"),
        ("PublicUrl", "https://reset.example.com"),
    ];
    values.extend_from_slice(more);
    values
}

fn resources(template: &Yaml) -> impl Iterator<Item = (&str, &Yaml)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(name, resource)| (name.as_str().expect("a resource name"), resource))
}

/// The resource a `!Ref` names.
fn referenced(value: &Yaml) -> Option<&str> {
    match tagged(value) {
        Some((tag, argument)) if tag == "Ref" => argument.as_str(),
        _ => None,
    }
}

#[test]
fn every_alarm_can_publish_to_its_topic() {
    let template = template();
    let mut topics = 0;
    for (name, alarm) in resources(&template).filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")) {
        let actions: Vec<&Yaml> = ["AlarmActions", "OKActions", "InsufficientDataActions"]
            .iter()
            .filter_map(|key| alarm["Properties"][*key].as_sequence())
            .flatten()
            .collect();
        assert!(!actions.is_empty(), "{name}: an alarm nobody hears of");
        for action in actions {
            let topic = referenced(action).unwrap_or_else(|| panic!("{name}: {action:?} is not a topic of the stack"));
            let topic = &template["Resources"][topic];
            assert_eq!(topic["Type"].as_str(), Some("AWS::SNS::Topic"), "{name}");
            let key = &topic["Properties"]["KmsMasterKeyId"];
            if key.is_null() {
                continue;
            }
            // CloudWatch cannot use the AWS-managed key: the notification fails on KMS.
            let key = referenced(key).unwrap_or_else(|| panic!("{name}: its topic's key {key:?} is not the stack's"));
            let statements = template["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{key}: a key policy"));
            let cloudwatch = statements.iter().find(|s| {
                s["Effect"].as_str() == Some("Allow")
                    && s["Principal"]["Service"].as_str() == Some("cloudwatch.amazonaws.com")
            });
            let actions =
                serde_yaml::to_string(&cloudwatch.expect("CloudWatch may use the key")["Action"]).expect("yaml");
            for needed in ["kms:Decrypt", "kms:GenerateDataKey*"] {
                assert!(actions.contains(needed), "{key}: CloudWatch needs {needed}: {actions}");
            }
            assert_eq!(template["Resources"][key]["Properties"]["EnableKeyRotation"].as_bool(), Some(true));
            topics += 1;
        }
    }
    assert!(topics >= 5, "the alarms checked: {topics}");
    let all = serde_yaml::to_string(&template["Resources"]).expect("yaml");
    assert!(!all.contains("KmsMasterKeyId: alias/aws/sns"), "a topic under the AWS-managed key");
}

#[test]
fn the_email_identity_is_created_and_kept_or_used_as_it_is() {
    let template = template();
    assert!(created(&template, "EmailSender", &deployment(&[])), "created unless told");
    assert!(!created(&template, "EmailSender", &deployment(&[("CreateEmailIdentity", "false")])));
    let sender = &template["Resources"]["EmailSender"];
    assert_eq!(sender["DeletionPolicy"].as_str(), Some("Retain"), "DKIM records point at it");
    assert_eq!(sender["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let dkim = &template["Outputs"]["EmailDkimRecords"];
    assert_eq!(dkim["Condition"].as_str(), Some("CreatesEmailIdentity"));
    let records = serde_yaml::to_string(&dkim["Value"]).expect("yaml");
    for i in 1..=3 {
        assert!(records.contains(&format!("EmailSender.DkimDNSTokenName{i}")), "{records}");
        assert!(records.contains(&format!("EmailSender.DkimDNSTokenValue{i}")), "{records}");
    }

    // Every statement that sends mail names the identity, and its configuration set when it has one.
    let identity = "arn:aws:ses:us-east-1:123456789012:identity/example.com";
    let set = "arn:aws:ses:us-east-1:123456789012:configuration-set/mail-events";
    let mut senders = 0;
    for (name, statement) in policy_statements(&template) {
        if statement["Action"].as_str() != Some("ses:SendEmail") {
            continue;
        }
        for (values, expected) in [
            (deployment(&[]), vec![identity]),
            (deployment(&[("EmailConfigurationSet", "mail-events")]), vec![identity, set]),
        ] {
            let arns: Vec<String> = statement["Resource"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{name}: a list of resources"))
                .iter()
                .filter_map(|r| chosen(&template, r, &values))
                .map(|r| text(&template, r, &values))
                .collect();
            assert_eq!(arns, expected, "{name}");
        }
        senders += 1;
    }
    assert!(senders >= 3, "the functions that send mail: {senders}");
}

#[test]
fn cloudfront_caches_no_error_of_the_api() {
    let template = template();
    let config = &template["Resources"]["Web"]["Properties"]["DistributionConfig"];
    let responses = config["CustomErrorResponses"].as_sequence().expect("CustomErrorResponses");
    // The statuses CloudFront caches by default (10 s), which it lets a distribution configure.
    for code in [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504] {
        let response = responses
            .iter()
            .find(|r| r["ErrorCode"].as_u64() == Some(code))
            .unwrap_or_else(|| panic!("{code}: cached 10 s by default"));
        assert_eq!(response["ErrorCachingMinTTL"].as_u64(), Some(0), "{code}");
        // The API's own error body reaches the page, not a page put in its place.
        assert!(response["ResponsePagePath"].is_null() && response["ResponseCode"].is_null(), "{code}");
    }
}

#[test]
fn the_web_bucket_is_kept_when_the_stack_goes() {
    let template = template();
    let bucket = &template["Resources"]["WebBucket"];
    assert_eq!(bucket["Properties"]["VersioningConfiguration"]["Status"].as_str(), Some("Enabled"));
    // A versioned bucket with objects cannot be deleted by CloudFormation: it is kept, and the
    // README says how to remove it.
    assert_eq!(bucket["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(bucket["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let readme = std::fs::read_to_string(crate::repo_root().join("README.md")).expect("README.md");
    assert!(readme.contains("aws s3api delete-bucket"), "README: removing the kept bucket");
}

#[test]
fn the_functions_log_levels_are_parameters() {
    let template = template();
    let logging = &template["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(logging["LogFormat"].as_str(), Some("JSON"));
    for (key, default, allowed) in [
        ("ApplicationLogLevel", "INFO", &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"][..]),
        ("SystemLogLevel", "WARN", &["DEBUG", "INFO", "WARN"][..]),
    ] {
        assert_eq!(referenced(&logging[key]), Some(key), "{key} is the parameter of that name");
        let parameter = &template["Parameters"][key];
        assert_eq!(parameter["Default"].as_str(), Some(default), "{key}");
        let offered: Vec<&str> =
            parameter["AllowedValues"].as_sequence().expect("AllowedValues").iter().filter_map(Yaml::as_str).collect();
        assert_eq!(offered, allowed, "{key}: Lambda's levels");
    }
}

#[test]
fn the_readme_builds_and_deploys_for_one_architecture_with_one_configuration() {
    let deploy = readme_deploy_section().replace("\\\n", " ");
    // sam looks for a relative --config-file beside the template, which for deploy is the
    // built one: the one file is named by an absolute path.
    assert!(deploy.contains(r#"config="$PWD/infra/samconfig.toml""#), "an absolute path to sam's settings");
    let commands: Vec<&str> =
        deploy.lines().map(str::trim).filter(|l| l.starts_with("sam build") || l.starts_with("sam deploy")).collect();
    assert!(
        commands.iter().any(|c| c.starts_with("sam build")) && commands.iter().any(|c| c.starts_with("sam deploy"))
    );
    for command in &commands {
        assert!(command.contains(r#"--config-file "$config""#), "{command}");
        // `sam build` resolves Architectures from the parameters it is given: the same choice
        // goes to the build and to the deploy, or an arm64 binary is deployed as x86_64.
        assert!(command.contains("Architecture=$arch"), "{command}");
        assert!(!command.contains("--beta-features"), "{command}: not needed by the pinned SAM CLI");
    }
    // The tools the README installs are the ones the tests pin.
    for (script, variable, package) in [
        ("tests/infra/lint.sh", "sam_version=", "aws-sam-cli"),
        ("tests/run.sh", "cargo_lambda_version=", "cargo-lambda"),
    ] {
        let text = std::fs::read_to_string(crate::repo_root().join(script)).expect(script);
        let pinned =
            text.lines().find_map(|l| l.strip_prefix(variable)).unwrap_or_else(|| panic!("{script}: {variable}"));
        assert!(deploy.contains(&format!("{package}=={pinned}")), "README installs {package} {pinned}");
    }
    let samconfig = std::fs::read_to_string(crate::repo_root().join("infra/samconfig.toml")).expect("samconfig");
    assert!(!samconfig.contains("Architecture="), "the architecture is chosen in one place, not here too");
    assert!(!samconfig.contains("beta_features"), "{samconfig}");
}

/// `sam build` runs cargo-lambda in a function's CodeUri: from the workspace's root, cargo
/// would enable the features of every member together (the tests' and the local server's
/// included) and every function would link every adapter.
#[test]
fn each_function_is_built_in_its_own_package_so_it_links_only_its_adapters() {
    let template = template();
    let mut functions = 0;
    for (name, resource) in
        resources(&template).filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
    {
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Binary");
        let own = &resource["Properties"]["CodeUri"];
        let code_uri = if own.is_null() { &template["Globals"]["Function"]["CodeUri"] } else { own };
        let code_uri = code_uri.as_str().unwrap_or_else(|| panic!("{name}: a CodeUri"));
        let folder = crate::repo_root().join("infra").join(code_uri);
        let manifest = std::fs::read_to_string(folder.join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{name}: {code_uri} has no Cargo.toml ({e})"));
        let manifest: toml::Value = toml::from_str(&manifest).expect("Cargo.toml");
        assert!(manifest.get("workspace").is_none(), "{name}: {code_uri} is the workspace's root");
        let bins: Vec<&str> = manifest["bin"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {code_uri} declares no binary"))
            .iter()
            .filter_map(|b| b["name"].as_str())
            .collect();
        assert_eq!(bins, [binary], "{name}: {code_uri} is the package of the binary {binary}");
        functions += 1;
    }
    assert_eq!(functions, sspr_http::Function::ALL.len() + 1, "the API's functions and remind");
}
