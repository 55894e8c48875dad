//! The deployed registration page's sign-in, as the template declares it (docs/architecture.md,
//! "Sign-in"): the pool's app client the page signs in with (the stack's own, or one named),
//! its managed-login domain (created from a prefix, or named), the API's JWT authorizer
//! accepting that client's tokens, the pages' CSP letting the page reach the issuer and the
//! domain, the `config.json` the stack outputs for the pages, and the README's deploy commands
//! reading outputs the stack has.

use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::cfn::{created, policy_statements, readme_deploy_section, refused, text};
use crate::template;

const POOL: &str = "us-east-1_AbCdEf123";
const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123";
/// The id Cognito gives the stack's own client, and a client the organisation already has.
const CREATED_CLIENT: &str = "1a2b3c4d5e6f7g8h9i0j1k2l3m";
const NAMED_CLIENT: &str = "7q8r9s0t1u2v3w4x5y6z7a8b9c";

/// A deployment: the parameters without a default, the pool, and `more`.
fn deployment(more: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut values = vec![
        ("UserPoolId", POOL),
        ("EmailIdentity", "example.com"),
        ("EmailFrom", "noreply@example.com"),
        ("PublicUrl", "https://reset.example.com"),
        ("RegistrationClient", CREATED_CLIENT),
        ("Web", "E2ABCDEF123456"),
        ("WebBucket", "sspr-webbucket-1a2b3c"),
    ];
    values.extend_from_slice(more);
    values
}

/// The stack's own client and domain; a named client and domain.
fn own() -> Vec<(&'static str, &'static str)> {
    deployment(&[("UserPoolDomainPrefix", "example-sspr")])
}
fn named() -> Vec<(&'static str, &'static str)> {
    deployment(&[("UserPoolClientId", NAMED_CLIENT), ("UserPoolDomain", "login.example.com")])
}

fn strings(template: &Yaml, list: &Yaml, values: &[(&str, &str)]) -> Vec<String> {
    list.as_sequence().unwrap_or_else(|| panic!("a list: {list:?}")).iter().map(|v| text(template, v, values)).collect()
}

fn output(template: &Yaml, name: &str, values: &[(&str, &str)]) -> String {
    let declared = &template["Outputs"][name]["Value"];
    assert!(!declared.is_null(), "template: no output {name}");
    text(template, declared, values)
}

#[test]
fn the_stacks_client_is_public_uses_the_code_grant_and_returns_only_to_the_page() {
    let template = template();
    assert!(created(&template, "RegistrationClient", &own()), "no client named: the stack creates one");
    assert!(!created(&template, "RegistrationClient", &named()), "a client named is used as it is");
    let client = &template["Resources"]["RegistrationClient"]["Properties"];
    let values = own();
    assert_eq!(text(&template, &client["UserPoolId"], &values), POOL);
    // No secret: a page cannot keep one. The page proves the code is its own with PKCE.
    assert_eq!(client["GenerateSecret"].as_bool(), Some(false));
    assert_eq!(client["AllowedOAuthFlowsUserPoolClient"].as_bool(), Some(true));
    assert_eq!(strings(&template, &client["AllowedOAuthFlows"], &values), ["code"], "no implicit grant");
    assert_eq!(strings(&template, &client["AllowedOAuthScopes"], &values), ["openid"], "an ID token, nothing more");
    assert_eq!(strings(&template, &client["SupportedIdentityProviders"], &values), ["COGNITO"]);
    // The page's redirect URI is its own address (web/signin.js): the origin and /register.
    for key in ["CallbackURLs", "LogoutURLs"] {
        assert_eq!(strings(&template, &client[key], &values), ["https://reset.example.com/register"], "{key}");
    }
    assert_eq!(client["PreventUserExistenceErrors"].as_str(), Some("ENABLED"));
    // CloudFront serves the page at that address.
    let paths = template["Resources"]["WebPaths"]["Properties"]["FunctionCode"].as_str().expect("WebPaths code");
    assert!(paths.contains(r#""/register": "/register.html""#), "{paths}");
    // A URL with a path or a trailing slash would make a callback the page never returns to.
    let pattern = template["Parameters"]["PublicUrl"]["AllowedPattern"].as_str().expect("PublicUrl pattern");
    let public_url = regex::Regex::new(pattern).expect("pattern");
    assert!(public_url.is_match("https://reset.example.com"));
    for wrong in ["https://reset.example.com/", "https://reset.example.com/sspr", "http://reset.example.com"] {
        assert!(!public_url.is_match(wrong), "PublicUrl {wrong} is accepted");
    }
}

#[test]
fn the_sign_in_domain_is_managed_login_created_from_a_prefix_or_named() {
    let template = template();
    assert!(created(&template, "SignInDomain", &own()));
    assert!(!created(&template, "SignInDomain", &named()));
    let domain = &template["Resources"]["SignInDomain"]["Properties"];
    assert_eq!(text(&template, &domain["Domain"], &own()), "example-sspr");
    assert_eq!(text(&template, &domain["UserPoolId"], &own()), POOL);
    // Managed login, whose sign-in page honours prompt=login (re-authentication).
    assert_eq!(domain["ManagedLoginVersion"].as_u64(), Some(2));
    // Managed login shows a client's pages only with a style: the stack's client gets one.
    assert!(created(&template, "RegistrationSignInStyle", &own()));
    let style = &template["Resources"]["RegistrationSignInStyle"]["Properties"];
    assert_eq!(text(&template, &style["ClientId"], &own()), CREATED_CLIENT);

    assert_eq!(output(&template, "SignInUrl", &own()), "https://example-sspr.auth.us-east-1.amazoncognito.com");
    assert_eq!(output(&template, "SignInUrl", &named()), "https://login.example.com");
    // One domain, said once: neither or both is refused at deploy.
    assert!(refused(&template, "SignInNeedsADomain", &own()).is_empty());
    assert!(refused(&template, "SignInNeedsADomain", &named()).is_empty());
    assert_eq!(refused(&template, "SignInNeedsADomain", &deployment(&[])).len(), 1, "no domain");
    let both = deployment(&[("UserPoolDomainPrefix", "example-sspr"), ("UserPoolDomain", "login.example.com")]);
    assert_eq!(refused(&template, "SignInNeedsADomain", &both).len(), 1, "two domains");
}

#[test]
fn the_authorizer_accepts_the_pages_tokens_and_config_json_names_them() {
    let template = template();
    let jwt = &template["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["CognitoJwt"]["JwtConfiguration"];
    for (case, values, client) in [("own", own(), CREATED_CLIENT), ("named", named(), NAMED_CLIENT)] {
        assert_eq!(text(&template, &jwt["issuer"], &values), ISSUER, "{case}");
        assert_eq!(strings(&template, &jwt["audience"], &values), [client], "{case}: the ID token's aud");

        let config: Value = serde_json::from_str(&output(&template, "PageConfig", &values)).expect("JSON");
        let keys: Vec<&str> = config.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["api_base", "client_id", "issuer", "scopes"], "{case}: {config}");
        assert_eq!(config["issuer"], ISSUER, "{case}: the issuer the authorizer trusts");
        assert_eq!(config["client_id"], client, "{case}: the audience the authorizer accepts");
        assert_eq!(config["scopes"], "openid", "{case}");
        // The API is on the pages' own origin: CloudFront forwards /v1/* to it.
        assert_eq!(config["api_base"], "", "{case}");
    }
    let behaviors = template["Resources"]["Web"]["Properties"]["DistributionConfig"]["CacheBehaviors"]
        .as_sequence()
        .expect("CacheBehaviors");
    assert!(behaviors
        .iter()
        .any(|b| b["PathPattern"].as_str() == Some("/v1/*") && b["TargetOriginId"].as_str() == Some("api")));
    // The functions read the user name and groups from the claims Cognito's ID token has.
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(variables["SSPR_CLAIM_USERNAME"].as_str(), Some("cognito:username"));
    assert_eq!(variables["SSPR_CLAIM_GROUPS"].as_str(), Some("cognito:groups"));
}

#[test]
fn the_pages_csp_lets_them_reach_the_issuer_and_the_sign_in_domain_only() {
    let template = template();
    let policy = &template["Resources"]["WebHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
        ["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"];
    for (case, values, domain) in [
        ("own", own(), "https://example-sspr.auth.us-east-1.amazoncognito.com"),
        ("named", named(), "https://login.example.com"),
    ] {
        let deployed = text(&template, policy, &values);
        // The local server's policy for the same places, directive for directive.
        let local = sspr_local::pages::csp(Some(&format!("https://cognito-idp.us-east-1.amazonaws.com {domain}")));
        assert_eq!(deployed, local, "{case}");
        assert_eq!(output(&template, "SignInUrl", &values), domain, "{case}: the token endpoint's origin");
    }
}

#[test]
fn the_readmes_deploy_commands_read_outputs_the_stack_has_and_upload_config_json() {
    let template = template();
    let deploy = readme_deploy_section();
    let outputs = template["Outputs"].as_mapping().expect("Outputs");
    let mut read = Vec::new();
    for (i, _) in deploy.match_indices("OutputKey=='") {
        let name = deploy[i + "OutputKey=='".len()..].split('\'').next().expect("a name");
        assert!(outputs.contains_key(name), "README reads the output {name}, which the stack does not have");
        read.push(name.to_owned());
    }
    for needed in ["WebBucketName", "PageConfig", "WebDistributionId"] {
        assert!(read.iter().any(|r| r == needed), "README's deploy commands do not read {needed}");
    }
    assert!(!deploy.contains("$(stack output"), "a command that does not exist");
    assert!(deploy.contains("config.json"), "config.json is uploaded beside the pages");
    assert!(deploy.contains("aws cloudfront create-invalidation"), "old and new page files are not mixed");
}

#[test]
fn a_pool_in_another_region_is_reached_in_its_own() {
    let template = template();
    let pool = "eu-west-1_AbCdEf123";
    let issuer = format!("https://cognito-idp.eu-west-1.amazonaws.com/{pool}");
    let mut values = named();
    values.retain(|(name, _)| *name != "UserPoolId");
    values.push(("UserPoolId", pool));
    let jwt = &template["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["CognitoJwt"]["JwtConfiguration"];
    assert_eq!(text(&template, &jwt["issuer"], &values), issuer);
    let config: Value = serde_json::from_str(&output(&template, "PageConfig", &values)).expect("JSON");
    assert_eq!(config["issuer"], issuer.as_str());
    let policy = &template["Resources"]["WebHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
        ["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"];
    assert!(text(&template, policy, &values).contains("https://cognito-idp.eu-west-1.amazonaws.com "));
    // Every statement on the pool names it in its region.
    let mut statements = 0;
    for (name, statement) in policy_statements(&template) {
        let actions = serde_yaml::to_string(&statement["Action"]).expect("actions");
        if actions.contains("cognito-idp:") {
            let arn = text(&template, &statement["Resource"], &values);
            assert_eq!(arn, format!("arn:aws:cognito-idp:eu-west-1:123456789012:userpool/{pool}"), "{name}");
            statements += 1;
        }
    }
    assert!(statements >= 2, "the functions that call the pool: {statements}");
}
