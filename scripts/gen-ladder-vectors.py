#!/usr/bin/env python3
"""Writes the inputs of the graduated-response ladder's conformance vectors
(tests/vectors/scopes/ladder_*.json; run from the repository root), without
expectations: bless them with
`ROLLGUARD_BLESS=1 cargo test -p rollguard-conformance --test vectors` (and revert the
unrelated files bless rewrites), then read every trace against its description."""
import json, sys
TENANTS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"]

def config(name, scopes, steps=None, extra=None):
    c = {
        "format_version": 1,
        "name": name,
        "versions": [{"id": "v1", "digest": "sha256:v1", "validated": True},
                     {"id": "v2", "digest": "sha256:v2"}],
        "stable": "v1",
        "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 2}],
        "gates": [{"name": "mean_latency", "metric": "latency_ms", "stat": "mean",
                   "rule": {"kind": "threshold", "max": 200},
                   "persistence": {"consecutive": 2}, "samples_min": 3}],
        "strategy": {"kind": "canary", "steps": steps or [{"kind": "set_weight", "duration_ms": 60000, "weight": 50}]},
        "analysis": {"interval_ms": 10000},
        "safety": {"ack_timeout_ms": 20000},
        "scopes": scopes,
    }
    if extra:
        c.update(extra)
    return c

def batch(t, slow, skip_v2=(), tiers=None):
    samples = []
    for ten in TENANTS:
        for arm in ["v1", "v2"]:
            if arm == "v2" and ten in skip_v2:
                continue
            for _ in range(2):
                v = 300 if (arm == "v2" and ten in slow) else 100
                s = {"at": t, "arm": arm, "metric": "latency_ms", "value": v, "tenant": ten}
                if tiers and ten in tiers:
                    s["tier"] = tiers[ten]
                samples.append(s)
    return {"input": {"kind": "observe_batch", "samples": samples}}

def start():
    return [{"input": {"kind": "start_rollout", "at": 0, "version": "v2"}},
            {"input": {"kind": "ack", "at": 0, "action_id": 1}}]

def ack(t, i, **kw):
    s = {"input": {"kind": "ack", "at": t, "action_id": i}}
    s.update(kw)
    return s

def write(name, description, cfg, steps):
    v = {"format_version": 1, "name": "scopes/" + name, "description": description,
         "config": cfg, "start": 0, "steps": steps}
    json.dump(v, open(f"tests/vectors/scopes/{name}.json", "w"), indent=2)

def error_vector(name, description, cfg, code, path):
    v = {"format_version": 1, "name": "scopes/" + name, "description": description,
         "config": cfg, "config_error": {"code": code, "path": path}}
    json.dump(v, open(f"tests/vectors/scopes/{name}.json", "w"), indent=2)
scopes = {"by": ["tenant"], "ladder": [
    {"rung": "pause_onboarding", "when": {}},
    {"rung": "freeze", "when": {"scopes_min": 2}},
    {"rung": "rollback", "when": {"scopes_min": 3}}]}
steps = start()
for t in range(0, 65000, 5000):
    slow = ["acme"]
    if t >= 20000: slow.append("globex")
    if t >= 40000: slow.append("initech")
    steps.append(batch(t, slow))
    if t == 20000: steps.append(ack(20000, 2, routing_table={}))
    if t == 40000: steps.append(ack(40000, 3, routing_table={}, restore=True))
    if t == 60000: steps.append(ack(60000, 4, routing_table={}))
write("ladder_escalates_from_pause_to_freeze_to_rollback",
 "scopes.ladder [pause_onboarding when {} (any tripped scope), freeze when scopes_min 2, rollback when scopes_min 3], eight tenants on a 50 % canary; a slow tenant's v2 mean is 300 ms against the 200 ms threshold while the candidate passes overall (125, 150, then 175 ms). acme is slow from the start and its scope trips at 20 s: one scope meets only pause_onboarding, issued with an action id and ack deadline, reason graduated_response, detail naming the rung and acme; after its ack the routing table says onboarding_paused. globex turns slow at 20 s: at 30 s it fails without tripping, so the rollout holds at the rung taken (hold, graduated_response, 'at rung pause_onboarding'). It trips at 40 s: two scopes meet freeze, the more severe rung, issued and escalated, naming both; the snapshot after its ack restores mid-ladder (rollout.ladder: rung freeze, onboarding_paused, frozen with the stage's 20 s left). Frozen, the stage timer does not end the stage at 60 s; at 50 s the two scopes hold at freeze. initech turns slow at 40 s and trips at 60 s: three scopes meet the rollback rung, today's automated rollback (reason gate_failed, detail 'rung rollback: ...' naming the three scopes, escalation automated_rollback); after its ack there is no rollout.", config("laddered", scopes), steps)

# B: route_back then approval at promotion
scopes = {"by": ["tenant"], "ladder": [{"rung": "route_back", "when": {}}]}
steps = start()
for t in range(0, 65000, 5000):
    slow = ["acme"] if t < 30000 else ["acme", "globex"]
    # The router honours route_back once acknowledged: acme's, then globex's requests
    # go to v1 only (the samples v2 would have got for them are not sent).
    skip = [x for x, since in (("acme", 20000), ("globex", 50000)) if t > since]
    steps.append(batch(t, slow, skip_v2=skip))
    if t == 20000: steps.append(ack(20000, 2, routing_table={}, restore=True))
    if t == 50000: steps.append(ack(50000, 3, routing_table={}))
steps.append({"input": {"kind": "tick", "at": 70000}})
steps.append({"input": {"kind": "resume", "at": 75000}})
steps.append(ack(75000, 4, routing_table={}))
write("ladder_route_back_then_approval_at_promotion", "scopes.ladder [route_back when {}]: acme's scope trips at 20 s and is routed back to v1 (route_back with version v2, to v1, scopes [acme]; reason graduated_response, an action id). After its ack the routing table lists acme in routed_back and the policy restores from its snapshot (scopes[acme].routed_back, rollout.ladder.rung route_back). The router honours it: acme's requests no longer reach v2, and acme's scope is no longer judged (the analyses list no scope until globex fails). globex turns slow at 30 s and trips at 50 s: route_back again, naming only the newly tripped globex; the table then lists both. The stage ends at 60 s with every counted gate passing, where the rollout would promote: it pauses for approval instead (pause_for_approval, reason graduated_response, detail naming the routed-back scopes). Nothing is promoted at 70 s; the operator's resume at 75 s approves, the promotion (approval_granted) is acknowledged and the rollout completes: no scope is routed back any more.", config("laddered", scopes), steps)

# C: freeze then resume
scopes = {"by": ["tenant"], "ladder": [{"rung": "freeze", "when": {}}]}
steps = start()
for t in list(range(0, 45000, 5000)) + list(range(45000, 170000, 10000)):
    slow = ["acme"] if t < 25000 else []
    if t == 125000:
        steps.append({"input": {"kind": "tick", "at": 120000}, "routing_table": {}})
        steps.append({"input": {"kind": "resume", "at": 120000}, "restore": True})
        steps.append({"input": {"kind": "resume", "at": 120000}})
    steps.append(batch(t, slow))
    if t == 20000: steps.append(ack(20000, 2, routing_table={}))
steps.append(ack(165000, 3))
write("ladder_freeze_holds_the_stage_until_resume", "scopes.ladder [freeze when {}]: acme's scope trips at 20 s; freeze is issued (action id, reason graduated_response) with an escalation naming acme, and the routing table is unchanged by it (the weight stays 50 %). acme recovers at 25 s and its gate clears at 30 s, every gate passes from then on, yet frozen, the 60 s stage does not end: at 120 s it is still at its step and nothing was decided. The operator's resume at 120 s unfreezes (command_accepted; the snapshot after it restores and continues alike); the stage has the 40 s it had left when frozen at 20 s, so a second resume finds nothing to resume (invalid_command). The stage ends at 160 s and promotes (decided at the 165 s batch, which fires the timer due at 160 s).", config("laddered", scopes), steps)

# D: rung by tier, trip below every rung
scopes = {"by": ["tenant"], "ladder": [{"rung": "pause_onboarding", "when": {"tiers": ["gold"]}}]}
tiers = {t: ("gold" if t == "globex" else "silver") for t in TENANTS}
steps = start()
for t in range(0, 50000, 5000):
    slow = ["acme"] if t < 20000 else ["acme", "globex"]
    steps.append(batch(t, slow, tiers=tiers))
    if t == 40000: steps.append(ack(40000, 2, routing_table={}))
write("ladder_rung_by_tier_and_a_trip_below_every_rung", "scopes.ladder [pause_onboarding when tiers [gold]]: globex is tier gold, the others silver (a tenant scope takes the tier label of its first sample). acme (silver) trips at 20 s: it meets no rung, so the rollout holds and escalates once with scoped_failure, as below an impact rule ('meeting no rung of the ladder'), and holds again at 30 s without a second escalation. globex turns slow at 20 s and trips at 40 s: a gold scope meets the rung, and pause_onboarding is issued naming both tripped scopes; after its ack the routing table says onboarding_paused.", config("laddered", scopes), steps)

error_vector("ladder_rungs_out_of_order_are_refused", "Rungs must come in the ladder's order (pause_onboarding, route_back, freeze, rollback), each at most once: route_back after freeze is refused at the later rung.",
  config("laddered", {"by": ["tenant"], "ladder": [{"rung": "freeze", "when": {}}, {"rung": "route_back", "when": {}}]}),
  "invalid_value", "scopes.ladder[1].rung")
error_vector("ladder_and_impact_together_are_refused", 'scopes.impact is the one-rung ladder [{rung: rollback, when: impact}]: giving both impact and ladder is refused at scopes.ladder.',
  config("laddered", {"by": ["tenant"], "impact": {"scopes_min": 2}, "ladder": [{"rung": "rollback", "when": {"scopes_min": 2}}]}),
  "invalid_value", "scopes.ladder")
