"""
The example's poller: fetches $URL (the web server's page) every second and
prints the HTTP status, until it is stopped.
"""

import os
import time
import urllib.request

url = os.environ["URL"]
while True:
    with urllib.request.urlopen(url, timeout=5) as response:
        print(f"poller: GET {url}: {response.status}", flush=True)
    time.sleep(1.0)
