"""Runs tap-zuora (in its own virtualenv) against a local server: `python tap_zuora_launcher.py
BASE_URL POLL_SECONDS <tap arguments>`. tap-zuora's base URLs are a fixed table; every entry is
replaced by BASE_URL. Its 60-second wait between job polls becomes POLL_SECONDS, so a test does
not wait a minute when its first poll comes before the worker has finished the job."""

import sys

from tap_zuora import client, main, sync

base_url, poll_seconds = sys.argv[1], int(sys.argv[2])
del sys.argv[1:3]
for key in client.URLS:
    client.URLS[key] = [base_url.rstrip("/") + "/"]
sync.DEFAULT_POLL_INTERVAL = poll_seconds
main()
