"""
A worker that lets a lease run out (frozen, cut off) gets no new job
until it speaks again: its own waiting TAKE must not take the re-queued
job straight back.
"""

import time

from harness import Broker, eq


def test_lost_worker_gets_no_job_until_it_speaks(ctx):
    b = Broker(ctx).start()
    c = b.client()
    a = b.client()
    a.request("WORKER a lease=1000").expect_ok()
    eq(c.request("SUBMIT -- long").one_id(), 1, "id")
    r = a.request("TAKE 1 0 default")
    eq(len(r.items), 1, "a takes job 1")
    # a waits for more and never heartbeats, as a frozen worker would.
    a.send(b"TAKE 1 20000 default\r\n")
    time.sleep(1.6)
    # Its lease ran out: its waiting TAKE is answered with the drop only.
    a.settimeout(2)
    r = a.read_reply()
    eq(r.kind, "ITEMS", "reply to a's waiting TAKE")
    eq([(i.kind, i.get("id"), i.get("reason")) for i in r.items],
       [("drop", "1", "lease-expired")], "a is told to drop job 1")
    st = c.request("STATUS 1").items[0]
    eq(st.get("state"), "queued", "job 1 back in its queue")
    # Another worker gets it, as attempt 2.
    w = b.client()
    w.request("WORKER b").expect_ok()
    r = w.request("TAKE 1 0 default")
    eq([(i.get("id"), i.get("attempt")) for i in r.items], [("1", "2")],
       "b takes job 1")
    # While a has said nothing, it gets no job even when one is ready.
    eq(c.request("SUBMIT -- next").one_id(), 2, "id")
    # Once a speaks again, it is served.
    r = a.request("TAKE 1 0 default")
    eq([(i.get("id"), i.get("attempt")) for i in r.items], [("2", "1")],
       "a, alive again, takes job 2")
    a.request("FINISH 1 1 exit=0 0", body=b"").expect_err("stale")
