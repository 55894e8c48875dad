#!/usr/bin/env bash
# Lints the SAM template offline: cfn-lint, then `sam validate --lint`; then checks the README's
# deploy commands against the AWS CLI and the SAM CLI. The tools are pinned and installed into
# virtual environments of their own on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=${SSPR_VENV:-$root/.venv}/infra
cfn_lint_version=1.58.0
sam_version=1.170.0
# The AWS CLI the README's deploy commands are checked against, in a virtual environment of its
# own (its botocore pin differs from the SAM CLI's).
awscli_version=1.46.3
awscli_venv=${SSPR_VENV:-$root/.venv}/awscli

if ! "$venv/bin/python" - "$cfn_lint_version" "$sam_version" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(version("cfn-lint") != sys.argv[1] or version("aws-sam-cli") != sys.argv[2])
PY
then
  echo "installing cfn-lint==$cfn_lint_version and aws-sam-cli==$sam_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "cfn-lint==$cfn_lint_version" "aws-sam-cli==$sam_version"
fi

# Offline: no account, no telemetry, no update checks. The region only names the rule set.
export AWS_ACCESS_KEY_ID=lint AWS_SECRET_ACCESS_KEY=lint AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export SAM_CLI_TELEMETRY=0 SAM_CLI_DISABLE_UPDATE_CHECK=1
unset AWS_ENDPOINT_URL

echo "cfn-lint $cfn_lint_version"
"$venv/bin/cfn-lint" --regions us-east-1 eu-west-1 -- infra/template.yaml
echo "sam validate --lint ($sam_version)"
(cd infra && "$venv/bin/sam" validate --lint --template template.yaml --region us-east-1)
if ! "$awscli_venv/bin/python" -c 'import sys; from importlib.metadata import version; sys.exit(version("awscli") != sys.argv[1])' "$awscli_version" 2>/dev/null; then
  echo "installing awscli==$awscli_version into $awscli_venv"
  python3 -m venv "$awscli_venv"
  "$awscli_venv/bin/pip" install -q --disable-pip-version-check "awscli==$awscli_version"
fi
echo "the README's deploy commands (aws $awscli_version, sam $sam_version)"
"$awscli_venv/bin/python" tests/infra/readme_commands.py README.md "$venv/bin/sam"
echo "template lint passed"
