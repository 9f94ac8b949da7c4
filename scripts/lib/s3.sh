# Throwaway S3-compatible object storage (moto's server) for the tests and the benchmark.
# Source this file (after pg.sh), then:
#   s3_start   start moto on a free loopback port with signature checking on, create an IAM
#              user with S3 rights, its keys and a bucket; export SUPABACKUP_TEST_S3_*
#   s3_stop    stop the server (the caller puts it in its EXIT trap)
# The keys reach clients only through the environment, never argv.

s3_start() {
  python3 -c "import moto.server, boto3" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check "moto[server]" boto3 >&2
  S3_TMP=$(mktemp -d "${TMPDIR:-/tmp}/supabackup-s3.XXXXXX")
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  # The first requests (creating the user, its keys, its policy and the bucket) need no
  # signature; every request after them is checked.
  INITIAL_NO_AUTH_ACTION_COUNT=4 python3 "$(dirname "${BASH_SOURCE[0]}")/moto_server.py" -H 127.0.0.1 -p "$port" \
    >"$S3_TMP/server.log" 2>&1 &
  S3_PID=$!
  wait_for_port "$port"
  SUPABACKUP_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  SUPABACKUP_TEST_S3_BUCKET=supabackup-test
  local keys
  keys=$(ENDPOINT="$SUPABACKUP_TEST_S3_ENDPOINT" BUCKET="$SUPABACKUP_TEST_S3_BUCKET" python3 - <<'PY'
import json, os, boto3
endpoint = os.environ["ENDPOINT"]
common = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **common)
iam.create_user(UserName="supabackup")
key = iam.create_access_key(UserName="supabackup")["AccessKey"]
iam.put_user_policy(UserName="supabackup", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
boto3.client("s3", **common).create_bucket(Bucket=os.environ["BUCKET"])
print(key["AccessKeyId"], key["SecretAccessKey"])
PY
  ) || { cat "$S3_TMP/server.log" >&2; return 1; }
  SUPABACKUP_TEST_S3_KEY_ID=${keys%% *}
  SUPABACKUP_TEST_S3_SECRET=${keys#* }
  export SUPABACKUP_TEST_S3_ENDPOINT SUPABACKUP_TEST_S3_BUCKET SUPABACKUP_TEST_S3_KEY_ID SUPABACKUP_TEST_S3_SECRET S3_TMP S3_PID
}

s3_stop() {
  [ -n "${S3_PID:-}" ] && kill "$S3_PID" 2>/dev/null && wait "$S3_PID" 2>/dev/null
  [ -n "${S3_TMP:-}" ] && rm -rf "$S3_TMP"
  S3_PID=
  return 0
}
