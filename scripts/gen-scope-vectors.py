#!/usr/bin/env python3
"""Writes the inputs of the conformance vectors in tests/vectors/scopes (run from the
repository root), without expectations: bless them with
`ROLLGUARD_BLESS=1 cargo test -p rollguard-conformance --test vectors`, then read every
trace against its description."""
import json, os
D='tests/vectors/scopes'
def base(scopes, limits=None, gates=None, weight=50):
    c={"format_version":1,"name":"scoped",
       "versions":[{"id":"v1","digest":"sha256:v1","validated":True},{"id":"v2","digest":"sha256:v2"}],
       "stable":"v1",
       "metrics":[{"name":"latency_ms","kind":"value","window_ms":10000,"buckets":2}],
       "gates":gates or [{"name":"mean_latency","metric":"latency_ms","stat":"mean",
                 "rule":{"kind":"threshold","max":200},"samples_min":3,"persistence":{"consecutive":2}}],
       "strategy":{"kind":"canary","steps":[{"kind":"set_weight","weight":weight,"duration_ms":60000}]},
       "analysis":{"interval_ms":10000},
       "safety":{"ack_timeout_ms":20000},
       "scopes":scopes}
    if limits: c["limits"]=limits
    return c
def traffic(t0, t1, tenants, slow, every=1000, extra=None, noise=False, weights=None):
    """Batches of samples: per second, for each tenant, one sample per arm."""
    steps=[]
    for sec in range(t0, t1, 5000):
        samples=[]
        for t in range(sec, min(sec+5000,t1), every):
            for k,ten in enumerate(tenants):
              for _ in range((weights or {}).get(ten, 1)):
                for arm in ["v1","v2"]:
                    x = 400 if (arm=="v2" and ten in slow) else 100
                    if noise: x = (150 if (arm=="v2" and ten in slow) else 100) + (t//1000*7+k*3)%11*2
                    s={"at":t,"arm":arm,"metric":"latency_ms","value":x,"tenant":ten}
                    if extra: s.update(extra(ten))
                    samples.append(s)
        steps.append({"input":{"kind":"observe_batch","samples":samples}})
    return steps
def write(name, desc, doc):
    doc={"format_version":1,"name":"scopes/"+name,"description":desc,**doc}
    json.dump(doc,open(f"{D}/{name}.json","w"),indent=2)

start=[{"input":{"kind":"start_rollout","at":0,"version":"v2"}},{"input":{"kind":"ack","at":0,"action_id":1}}]
ten3=["acme","globex","initech"]
# 1
steps=start+traffic(0,30000,ten3,{"acme"})+[{"input":{"kind":"tick","at":30000}}]
write("one_tenant_fails_and_is_named",
 "Scopes by tenant, a 50 % canary, three tenants with equal traffic. v2 is slow (400 ms) for acme only: overall its mean is 200 ms, which passes the threshold (fail above 200), so without scopes nothing would happen. acme's scope has its own window and persistence: its mean of 400 ms fails at the 10 s evaluation and again at 20 s, tripping the gate in that scope (gate_tripped names the scope) and rolling back automatically. The analysis events list the failing scope's report (scope, arm, samples of acme only) beside the overall report; passing scopes are not listed. The rollback carries acme's tripped report and the escalation's detail names the scope.",
 {"config":base({"by":["tenant"]}),"start":0,"steps":steps})
# 2 overflow
steps=start+traffic(0,30000,["acme","globex","initech","umbrella"],{"initech","umbrella"})+[{"input":{"kind":"tick","at":30000}}]
write("overflow_scope_collects_tenants_beyond_scopes_max",
 "limits.scopes_max 3: acme and globex, first seen, get their own scopes; initech and umbrella, seen after, share the overflow scope ({\"overflow\": true}), so the scopes never outgrow the limit. v2 is slow for initech and umbrella: overall its mean is 250 ms, so the overall gate fails too; the overflow scope's mean is 400 ms and it fails with it, while acme and globex pass and are not listed. Both the overall gate and the overflow scope's trip at 20 s; the rollback carries both reports.",
 {"config":base({"by":["tenant"]},{"scopes_max":3}),"start":0,"steps":steps})
# 3 tier+agent combination, snapshot restore mid-way, and samples lacking a label
def extra(ten):
    return {"tier": "gold" if ten=="acme" else "silver", "agent":"planner"}
steps=start+traffic(0,15000,ten3,{"acme"},extra=extra)
steps[-1]["restore"]=True
steps+=traffic(15000,30000,ten3,{"acme"},extra=extra)
steps+=[{"input":{"kind":"observe","at":30000,"arm":"v2","metric":"latency_ms","value":900,"tenant":"acme"}},
        {"input":{"kind":"tick","at":30000}}]
write("tier_and_agent_scopes_survive_a_snapshot",
 "Scopes formed by the combination of tier and agent (by [\"tier\", \"agent\"]): acme is gold, the others silver, all served by the planner agent. v2 is slow for acme, so the gold/planner scope (mean 400 ms) fails at 10 s while silver/planner and the overall mean pass. At 15 s the policy is replaced by one restored from its own snapshot, which keeps the scope dictionary, each scope's persistence and the arms' scoped windows: the second failure at 20 s trips the gate in the gold/planner scope exactly as without the restore, and rolls back. A sample with a tenant but no tier or agent (at 30 s) is counted overall only.",
 {"config":base({"by":["tier","agent"]}),"start":0,"steps":steps})
# 4 statistical alpha split
g=[{"name":"mean_test","metric":"latency_ms","stat":"mean","rule":{"kind":"sequential_mean","alpha":0.01,"mixing_scale":50},"samples_min":5}]
steps=start+traffic(0,15000,["acme","globex","initech","umbrella"],{"acme"},noise=True)+[{"input":{"kind":"tick","at":15000}}]
write("statistical_gates_split_alpha_across_scopes",
 "A sequential_mean gate (alpha 0.01) with scopes by tenant and the defaults alpha_share 0.5, scopes_max 64: the overall verdict is judged at alpha × (1 − 0.5) = 0.005 and each scope at 0.01 × 0.5 / 64 = 0.000078125, so the chance of any false failure, overall or in any of the 64 scopes, stays within 0.01 (a union bound over e-values). Every report says the level it used (`alpha`). Latencies vary between 100 and 120 ms; v2 is 50 ms slower for acme only, one of four tenants. At the first evaluation (10 s) acme's test fails (p about 1e-55, far below its 0.000078125) while the overall one, which sees the shift diluted to a quarter of the traffic, has not concluded (p 0.029, above 0.005): the analysis lists acme's failing report, and the automated rollback carries it, each report with its own alpha.",
 {"config":base({"by":["tenant"]},gates=g),"start":0,"steps":steps})
# tier override
def gold(ten):
    return {"tier": "gold" if ten=="acme" else "silver"}
steps=start+traffic(0,30000,ten3,{"acme","globex"},extra=gold)+[{"input":{"kind":"tick","at":30000}}]
cfg=base({"by":["tenant"],"samples_min":5,"tiers":{"gold":{"gates":{"mean_latency":{"rule":{"kind":"threshold","max":350}}}}}})
write("tier_override_holds_gold_tenants_to_its_own_threshold",
 "Scopes by tenant with a tier override: gold scopes are judged against max 350 ms instead of the gate's 200 (a gold tenant with a known slower workload, say), and every scope needs 5 samples (scopes.samples_min). A scope's tier is the tier label of the sample that created it: acme is gold, globex and initech silver. v2 is slow (400 ms) for acme and globex: both scopes fail at the 10 s evaluation, acme against 350 and globex against 200, and trip at 20 s; overall the mean is 300 ms and fails too. The rollback carries the overall report and both scopes', each with the bound it was judged against (max 200 overall and for globex, 350 for acme).",
 {"config":cfg,"start":0,"steps":steps})
cfg=base({"by":["tenant"],"tiers":{"gold":{"gates":{"mean_latency":{"rule":{"kind":"vs_baseline","max_ratio":1.5}}}}}})
write("tier_override_of_another_kind_is_refused",
 "A tier override keeps its gate's kind: a vs_baseline rule for the threshold gate mean_latency is refused with invalid_value at the override's rule.",
 {"config":cfg,"config_error":{"code":"invalid_value","path":"scopes.tiers.gold.gates.mean_latency.rule"}})
# impact rules
steps=start+traffic(0,70000,ten3,{"acme"})+[{"input":{"kind":"tick","at":70000}}]
write("impact_below_the_rule_holds_and_escalates_once",
 "scopes.impact {scopes_min: 2}: gates tripped in scopes roll back only when at least two scopes trip (an overall trip always does). v2 is slow for acme only; overall its mean is 200 ms and passes. acme's scope trips at 20 s: one scope, below the rule, so there is no rollback. The policy holds (a hold decision with reason scoped_failure and acme's report at every evaluation while it stays tripped) and escalates once, naming the scope. The rollout does not advance: its 60 s step would end at 60 s, but a stage ends only when no gate is tripped, so at 70 s v2 is still at 50 % and not promoted.",
 {"config":base({"by":["tenant"],"impact":{"scopes_min":2}}),"start":0,"steps":steps})
g=[{"name":"mean_latency","metric":"latency_ms","stat":"mean","rule":{"kind":"threshold","max":300},"samples_min":3,"persistence":{"consecutive":2}}]
steps=start+traffic(0,30000,ten3,{"acme"},weights={"acme":3})+[{"input":{"kind":"tick","at":30000}}]
write("impact_by_traffic_share_rolls_back",
 "scopes.impact {traffic_min: 0.5}: gates tripped in scopes roll back when the tripped scopes carry at least half the samples the gate judged overall. acme sends three times the traffic of globex and initech (60 % of it), and v2 is slow for acme (400 ms): overall its mean is 280 ms, which passes max 300, while acme's scope fails at 10 s and trips at 20 s. Its 30 of the 50 samples judged overall meet the rule: an automated rollback, carrying acme's report.",
 {"config":base({"by":["tenant"],"impact":{"traffic_min":0.5}},gates=g),"start":0,"steps":steps})
# 5 config error
write("empty_by_is_refused",
 "A scopes section must name at least one label; an empty `by` is refused with invalid_value at scopes.by.",
 {"config":base({"by":[]}),"config_error":{"code":"invalid_value","path":"scopes.by"}})
write("a_label_named_twice_is_refused",
 "Each label may form a scope once: [\"tenant\", \"tenant\"] is refused with duplicate_name at the second.",
 {"config":base({"by":["tenant","tenant"]}),"config_error":{"code":"duplicate_name","path":"scopes.by[1]"}})
# histogram_bins_max: a scope's bucket halves its resolution
def spread(t, ten, arm):
    if ten == "acme" and arm == "v2":
        xs = [round(10 * 1.32 ** k, 3) for k in range(20)]
    else:
        xs = [round(100 * 1.04 ** k, 3) for k in range(20 if ten == "acme" else 40)]
    return [{"at": t, "arm": arm, "metric": "latency_ms", "value": x, "tenant": ten} for x in xs]
g=[{"name":"p95_latency","metric":"latency_ms","stat":"p95","rule":{"kind":"threshold","max":1000},"samples_min":3,"persistence":{"consecutive":2}}]
steps=list(start)
for t in range(0, 22500, 2500):
    samples=[s for ten in ["acme","globex"] for arm in ["v1","v2"] for s in spread(t, ten, arm)]
    steps.append({"input":{"kind":"observe_batch","samples":samples}})
    if t == 10000:
        steps[-1]["restore"]=True
steps.append({"input":{"kind":"tick","at":22500}})
write("a_scope_bucket_halves_its_histogram_past_histogram_bins_max",
 "scopes.histogram_bins_max 16, a p95 gate (fail above 1000 ms). Every 2.5 s acme sends 20 latencies per arm and globex 40; on v2 acme's spread from 10 ms to 1950 ms (3 of 20 above 1000), every other series from 100 ms to at most 460 ms. A 5 s bucket of a scope uses more distinct bins than its 16 cells, so it halves its resolution until its values fit: acme's v2 buckets four times, to cells of 16 bins (half an octave). acme's v2 p95 (exactly 1477) is read as the midpoint of the cell holding its rank, 1024 to 1536: 1280, within the 2^4/64 bound. It fails at 10 s and 20 s, tripping the gate in acme's scope and rolling back, while globex passes; the overall window keeps every bin, and its p95 (856, the bin of 848: acme's tail is under 5 % of v2's samples) passes. The state is snapshotted and restored at 10 s: the halved buckets keep their resolution (`halvings` in the snapshot) and the run continues identically.",
 {"config":base({"by":["tenant"],"histogram_bins_max":16},gates=g),"start":0,"steps":steps})
write("histogram_bins_max_below_16_is_refused",
 "scopes.histogram_bins_max must be from 16 to 4098: 8 is refused with invalid_value at scopes.histogram_bins_max.",
 {"config":base({"by":["tenant"],"histogram_bins_max":8}),"config_error":{"code":"invalid_value","path":"scopes.histogram_bins_max"}})
