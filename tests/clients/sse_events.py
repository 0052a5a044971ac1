"""Follow a prefer-gateway job's live status with requests-sse's EventSource.

The "real client" check of issue 17 (live status over Server-Sent Events): nothing here
knows the gateway beyond the WHATWG event-stream rules that ``EventSource`` implements.
It connects to the job's status URL (``Accept: text/event-stream`` is the client's own),
prints every event, and goes on as an ``EventSource`` does: when the gateway closes the
stream after the terminal event, it reconnects with ``Last-Event-ID``, and stops when the
answer is not a stream (the gateway's ``204 No Content``: nothing after that id).

Usage::

    sse_events.py URL [HEADER=VALUE ...]

Prints one JSON line per event, ``{"type", "id", "job", "status"}``, then
``stopped <status code>``; exits 1 if the client ended any other way.
"""

import json
import sys
from datetime import timedelta

from requests_sse import EventSource, InvalidStatusCodeError


def main() -> int:
    url = sys.argv[1]
    headers = dict(arg.split("=", 1) for arg in sys.argv[2:])
    # A short reconnection time keeps the test quick; a read timeout keeps it bounded.
    with EventSource(
        url,
        reconnection_time=timedelta(milliseconds=100),
        max_connect_retry=0,
        timeout=30,
        headers=headers,
    ) as source:
        try:
            for event in source:
                doc = json.loads(event.data)
                line = {
                    "type": event.type,
                    "id": event.last_event_id,
                    "job": doc["id"],
                    "status": doc["status"],
                }
                print(json.dumps(line), flush=True)
        except InvalidStatusCodeError as e:
            print(f"stopped {e.status_code}", flush=True)
            return 0
    print("the event source ended without a final answer", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
