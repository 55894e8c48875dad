//! The template's on-premises directory: what the `Directory` parameter offers, the LDAP
//! settings and the VPC the functions get only with an LDAP directory (`ldap` or `hybrid`),
//! and the directory's password never in the template (it is `ldap_bind_password` in the
//! stack's secret). The template's conditions are worked out for each directory.

use std::collections::BTreeSet;

use serde_yaml::Value as Yaml;

use crate::cfn::{chosen, holds, named, tagged, text};
use crate::{repo_root, template};

/// The directories the `Directory` parameter offers.
const DIRECTORIES: [&str; 3] = ["cognito", "ldap", "hybrid"];

/// A deployment with `directory` and every setting an LDAP directory takes, so that only the
/// directory decides what the functions get (the other parameters take their default).
fn deployment(directory: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("Directory", directory),
        ("LdapUrl", "ldaps://dc1.corp.example.com"),
        ("LdapBindDn", "CN=sspr-svc,OU=Services,DC=corp,DC=example,DC=com"),
        ("LdapBaseDn", "DC=corp,DC=example,DC=com"),
        ("LdapUserAttribute", "userPrincipalName"),
        ("SubnetIds", "subnet-0a1b2c3d,subnet-4e5f6a7b"),
        ("SecurityGroupIds", "sg-0a1b2c3d"),
    ]
}

/// Every `Environment.Variables` of the template: the Globals', then each resource's own.
fn environments(template: &Yaml) -> Vec<(String, &serde_yaml::Mapping)> {
    let mut all = Vec::new();
    if let Some(variables) = template["Globals"]["Function"]["Environment"]["Variables"].as_mapping() {
        all.push(("Globals".to_owned(), variables));
    }
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        if let Some(variables) = resource["Properties"]["Environment"]["Variables"].as_mapping() {
            all.push((name.as_str().expect("resource name").to_owned(), variables));
        }
    }
    all
}

#[test]
fn the_directory_parameter_offers_cognito_ldap_and_hybrid() {
    let template = template();
    let parameter = &template["Parameters"]["Directory"];
    let allowed: Vec<&str> = parameter["AllowedValues"]
        .as_sequence()
        .expect("Directory: AllowedValues")
        .iter()
        .map(|v| v.as_str().expect("a directory"))
        .collect();
    for directory in DIRECTORIES {
        assert!(allowed.contains(&directory), "Directory: {directory} is not offered ({allowed:?})");
    }
    assert_eq!(parameter["Default"].as_str(), Some("cognito"), "Cognito unless told otherwise");
    // The functions are told which one.
    let variable = &template["Globals"]["Function"]["Environment"]["Variables"]["SSPR_DIRECTORY"];
    for directory in DIRECTORIES {
        let values = deployment(directory);
        let set = chosen(&template, variable, &values).map(|v| text(&template, v, &values));
        assert_eq!(set.as_deref(), Some(directory), "SSPR_DIRECTORY with Directory {directory}");
    }
}

#[test]
fn the_ldap_settings_are_given_only_with_an_ldap_directory() {
    let template = template();
    let mut seen = BTreeSet::new();
    for (place, variables) in environments(&template) {
        for (name, value) in variables {
            let name = name.as_str().expect("variable name");
            if !name.starts_with("SSPR_LDAP_") {
                continue;
            }
            seen.insert(name.to_owned());
            assert_eq!(
                tagged(value).map(|(tag, _)| tag).as_deref(),
                Some("If"),
                "{place}: {name} is set whatever the directory"
            );
            for directory in DIRECTORIES {
                let set = chosen(&template, value, &deployment(directory)).is_some();
                assert_eq!(set, directory != "cognito", "{place}: {name} with Directory {directory}");
            }
        }
    }
    for name in ["SSPR_LDAP_URL", "SSPR_LDAP_FLAVOUR", "SSPR_LDAP_BIND_DN", "SSPR_LDAP_BASE_DN"] {
        assert!(seen.contains(name), "{name}: an LDAP directory needs it");
    }
}

#[test]
fn only_an_ldap_directory_puts_functions_in_the_vpc() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let global = &template["Globals"]["Function"]["VpcConfig"];
    for directory in DIRECTORIES {
        let values = deployment(directory);
        for (name, resource) in resources {
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Binary");
            let own = &resource["Properties"]["VpcConfig"];
            let vpc = if own.is_null() { global } else { own };
            let config = if vpc.is_null() { None } else { chosen(&template, vpc, &values) };
            let reaches_directory =
                sspr_http::Function::ALL.into_iter().any(|f| f.binary() == binary && f.needs().directory);
            match config {
                None => assert!(
                    directory == "cognito" || !reaches_directory,
                    "{name:?} reaches the directory: with Directory {directory} it runs in the subnets given"
                ),
                Some(config) => {
                    assert_ne!(directory, "cognito", "{name:?}: in a VPC with the Cognito directory");
                    for key in ["SubnetIds", "SecurityGroupIds"] {
                        let set =
                            tagged(&config[key]).map(|(tag, argument)| (tag, argument.as_str().map(str::to_owned)));
                        assert_eq!(set, Some(("Ref".to_owned(), Some(key.to_owned()))), "{name:?}: {key}");
                    }
                }
            }
            // SAM gives a function with a VpcConfig, whatever its condition, the managed policy
            // AWSLambdaVPCAccessExecutionRole: outside the VPC, creating interfaces is denied.
            if !vpc.is_null() && config.is_none() {
                let denied = resource["Properties"]["Policies"]
                    .as_sequence()
                    .expect("Policies")
                    .iter()
                    .filter_map(|policy| chosen(&template, policy, &values))
                    .filter_map(|policy| match tagged(policy) {
                        Some((tag, argument)) if tag == "Ref" => argument.as_str(),
                        _ => None,
                    })
                    .any(|policy| {
                        let policy = &template["Resources"][policy];
                        let applies = match policy["Condition"].as_str() {
                            Some(condition) => named(&template, condition, &values),
                            None => true,
                        };
                        applies
                            && policy["Properties"]["PolicyDocument"]["Statement"]
                                .as_sequence()
                                .into_iter()
                                .flatten()
                                .any(|statement| {
                                    statement["Effect"].as_str() == Some("Deny")
                                        && serde_yaml::to_string(&statement["Action"])
                                            .expect("actions")
                                            .contains("ec2:CreateNetworkInterface")
                                })
                    });
                assert!(
                    denied,
                    "{name:?}: outside a VPC its role creates no network interfaces (Directory {directory})"
                );
            }
        }
    }
}

#[test]
fn the_directory_password_is_only_in_the_secret() {
    let template = template();
    for (name, parameter) in template["Parameters"].as_mapping().expect("Parameters") {
        let name = name.as_str().expect("parameter name");
        let lower = name.to_lowercase();
        for word in ["password", "passwd", "pwd", "secret"] {
            assert!(
                !lower.contains(word),
                "parameter {name}: the directory's password is in the secret, never a parameter"
            );
        }
        assert!(parameter["NoEcho"].is_null(), "parameter {name}: no secret is a parameter");
    }
    for (place, variables) in environments(&template) {
        for (name, value) in variables {
            let name = name.as_str().expect("variable name");
            let upper = name.to_uppercase();
            for word in ["PASSWORD", "PASSWD", "PWD", "PEPPER"] {
                assert!(!upper.contains(word), "{place}: {name}: secrets never go in the environment");
            }
            let value = serde_yaml::to_string(value).expect("value");
            assert!(!value.to_lowercase().contains("password"), "{place}: {name} is {value}");
            assert!(!value.contains("{{resolve:"), "{place}: {name} resolves a secret into the environment");
        }
    }
    // The functions read it from the stack's secret, as they read the pepper.
    let arn = &template["Globals"]["Function"]["Environment"]["Variables"]["SSPR_SECRETS_ARN"];
    let arn = tagged(arn).map(|(tag, argument)| (tag, argument.as_str().map(str::to_owned)));
    assert_eq!(arn, Some(("Ref".to_owned(), Some("Secrets".to_owned()))), "SSPR_SECRETS_ARN");
    // No dynamic reference puts a secret's value into a resource's properties.
    let path = repo_root().join("infra/template.yaml");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for reference in ["{{resolve:secretsmanager", "{{resolve:ssm-secure"] {
        assert!(!source.contains(reference), "{}: {reference}", path.display());
    }
}

#[test]
fn an_ldap_directory_without_its_settings_is_refused_at_deploy() {
    let template = template();
    let rules = template["Rules"].as_mapping().expect("Rules");
    let rule = rules
        .values()
        .find(|rule| serde_yaml::to_string(&rule["RuleCondition"]).expect("condition").contains("Directory"))
        .expect("a rule on the Directory parameter");
    for directory in DIRECTORIES {
        let applies = holds(&template, &rule["RuleCondition"], &[("Directory", directory)]);
        assert_eq!(applies, directory != "cognito", "the rule with Directory {directory}");
    }
    let assertions = serde_yaml::to_string(&rule["Assertions"]).expect("assertions");
    for parameter in ["LdapUrl", "LdapBindDn", "LdapBaseDn", "SubnetIds", "SecurityGroupIds"] {
        assert!(assertions.contains(&format!("Ref {parameter}")), "the rule asks for {parameter}: {assertions}");
    }
}
