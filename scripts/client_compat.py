"""Drives `steward sim` with widely used third-party clients, unchanged.

py-consul (Consul), python-nomad (Nomad) and hvac (Vault) must work against the
simulator exactly as against real servers. Every check raises on failure; the script
exits non-zero on the first one. Ports come from the environment (client-compat.sh).
"""

import os
import sys
import time
import threading

import consul
import hvac
import nomad

CONSUL_PORT = int(os.environ["CONSUL_PORT"])
NOMAD_PORT = int(os.environ["NOMAD_PORT"])
VAULT_PORT = int(os.environ["VAULT_PORT"])


def wait_until_up():
    deadline = time.time() + 60
    last = None
    while time.time() < deadline:
        try:
            consul.Consul(host="127.0.0.1", port=CONSUL_PORT).status.leader()
            nomad.Nomad(host="127.0.0.1", port=NOMAD_PORT, timeout=5).status.leader.get_leader()
            hvac.Client(url=f"http://127.0.0.1:{VAULT_PORT}").sys.read_health_status(method="GET")
            return
        except Exception as e:  # noqa: BLE001 - still starting
            last = e
            time.sleep(0.2)
    raise SystemExit(f"simulator did not come up: {last}")


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok  {name}")


def consul_checks():
    c = consul.Consul(host="127.0.0.1", port=CONSUL_PORT)
    check("consul status.leader", c.status.leader() != "")
    check("consul agent.self has Config", "Config" in c.agent.self())

    check("kv put", c.kv.put("compat/a", "hello") is True)
    index, entry = c.kv.get("compat/a")
    check("kv get value", entry["Value"] == b"hello", entry)
    check("kv get index", int(index) >= 1, index)
    check("kv cas mismatch is False", c.kv.put("compat/a", "x", cas=entry["ModifyIndex"] + 1000) is False)
    check("kv cas match is True", c.kv.put("compat/a", "world", cas=entry["ModifyIndex"]) is True)
    c.kv.put("compat/b/c", "1", flags=42)
    _, flagged = c.kv.get("compat/b/c")
    check("kv flags", flagged["Flags"] == 42, flagged)
    _, entries = c.kv.get("compat/", recurse=True)
    check("kv recurse", [e["Key"] for e in entries] == ["compat/a", "compat/b/c"], entries)
    _, keys = c.kv.get("compat/", keys=True, separator="/")
    check("kv keys with separator", keys == ["compat/a", "compat/b/"], keys)
    index, missing = c.kv.get("compat/missing")
    check("kv missing is None with an index", missing is None and int(index) >= 1, (index, missing))

    # A blocking query returns early when the key changes.
    index, _ = c.kv.get("compat/a")
    timer = threading.Timer(0.3, lambda: c.kv.put("compat/a", "woken"))
    timer.start()
    start = time.time()
    new_index, woken = c.kv.get("compat/a", index=index, wait="10s")
    timer.join()
    check("kv blocking query wakes on write", woken["Value"] == b"woken" and time.time() - start < 5)
    check("kv blocking index advanced", int(new_index) > int(index), (index, new_index))

    session = c.session.create(name="compat", ttl=30, lock_delay=0, behavior="release")
    check("session create", isinstance(session, str) and len(session) == 36, session)
    check("session renew", c.session.renew(session)["ID"] == session)
    check("kv acquire", c.kv.put("compat/lock", "me", acquire=session) is True)
    _, locked = c.kv.get("compat/lock")
    check("kv lock holder", locked["Session"] == session and locked["LockIndex"] == 1, locked)
    check("kv release", c.kv.put("compat/lock", "me", release=session) is True)
    _, info = c.session.info(session)
    check("session info", info["ID"] == session, info)
    check("session destroy", c.session.destroy(session) is True)
    _, gone = c.session.info(session)
    check("session info after destroy is None", gone is None, gone)

    result = c.txn.put([
        {"KV": {"Verb": "set", "Key": "compat/t1", "Value": "MQ=="}},
        {"KV": {"Verb": "get", "Key": "compat/t1"}},
    ])
    check("txn results", len(result["Results"]) == 2 and result["Results"][1]["KV"]["Value"] == "MQ==", result)

    check("config set service-defaults", c.config.set("service-defaults", "compat-svc", {"Protocol": "http"}) is True)
    entry = c.config.get("service-defaults", "compat-svc")
    check("config get", entry["Protocol"] == "http" and entry["ModifyIndex"] >= 1, entry)
    check("config set intentions", c.config.set("service-intentions", "compat-svc", {
        "Sources": [{"Name": "web", "Action": "allow"}, {"Name": "*", "Action": "deny"}],
    }) is True)
    intentions = c.config.get("service-intentions", "compat-svc")
    check("intentions normalised", [s["Precedence"] for s in intentions["Sources"]] == [9, 8], intentions)
    listed = c.config.list("service-defaults")
    check("config list", any(e["Name"] == "compat-svc" for e in listed), listed)
    c.config.delete("service-intentions", "compat-svc")
    c.config.delete("service-defaults", "compat-svc")

    check("catalog register", c.catalog.register("compat-node", "127.0.0.2", service={
        "Service": "compat-api", "ID": "compat-api-1", "Port": 8080}) is True)
    _, services = c.catalog.services()
    check("catalog services", "compat-api" in services, services)
    _, instances = c.health.service("compat-api")
    check("health service", instances and instances[0]["Service"]["Port"] == 8080, instances)
    check("kv delete recurse", c.kv.delete("compat/", recurse=True) is True)


def nomad_checks():
    n = nomad.Nomad(host="127.0.0.1", port=NOMAD_PORT, timeout=10)
    check("nomad leader", n.status.leader.get_leader() != "")
    job = {"Job": {
        "ID": "compat", "Name": "compat", "Type": "service", "Datacenters": ["dc1"],
        "TaskGroups": [{"Name": "web", "Count": 1, "Tasks": [{
            "Name": "app", "Driver": "docker", "Config": {"image": "nginx:1.27"},
            "Resources": {"CPU": 100, "MemoryMB": 64}}]}]}}
    reg = n.jobs.register_job(job)
    check("nomad register", reg["EvalID"] and reg["JobModifyIndex"] >= 1, reg)
    got = n.job.get_job("compat")
    check("nomad get canonicalised", got["Priority"] == 50 and got["Region"] == "global", got)
    plan = n.job.plan_job("compat", job, diff=True)
    check("nomad identical plan has no diff", plan["Diff"]["Type"] == "None", plan["Diff"])
    job["Job"]["TaskGroups"][0]["Count"] = 3
    plan = n.job.plan_job("compat", job, diff=True)
    check("nomad changed plan is Edited", plan["Diff"]["Type"] == "Edited", plan["Diff"])
    listed = n.jobs.get_jobs()
    check("nomad list", any(j["ID"] == "compat" for j in listed), listed)
    versions = n.job.get_versions("compat")
    check("nomad versions", len(versions["Versions"]) >= 1, versions)
    n.job.get_allocations("compat")
    n.job.get_deployment("compat")
    stop = n.job.deregister_job("compat", purge=True)
    check("nomad purge", stop["EvalID"], stop)
    try:
        n.job.get_job("compat")
        raise AssertionError("nomad get after purge should fail")
    except nomad.api.exceptions.URLNotFoundNomadException:
        print("ok  nomad get after purge is 404")


def vault_checks():
    v = hvac.Client(url=f"http://127.0.0.1:{VAULT_PORT}", token="root")
    check("vault authenticated", v.is_authenticated())
    health = v.sys.read_health_status(method="GET")
    check("vault health", health["initialized"] and not health["sealed"], health)
    check("vault lookup-self", v.lookup_token()["data"]["policies"] == ["root"])
    policy = 'path "secret/data/compat/*" { capabilities = ["read"] }'
    v.sys.create_or_update_acl_policy(name="Compat-Policy", policy=policy)
    read = v.sys.read_acl_policy("compat-policy")
    check("vault policy lower-cased and stored", read["data"]["policy"] == policy, read)
    listed = v.sys.list_acl_policies()["data"]["keys"]
    check("vault policy list", "compat-policy" in listed and "default" in listed, listed)
    v.auth.jwt.create_role(
        # hvac 2.4 makes allowed_redirect_uris a required argument even for jwt roles
        # (Vault only uses it for oidc roles); an empty list is what a jwt role has.
        name="compat-role", role_type="jwt", user_claim="/nomad_job_id", bound_audiences=["vault.io"],
        allowed_redirect_uris=[],
        token_policies=["compat-policy"], token_period="30m", path="jwt-nomad",
        user_claim_json_pointer=True,
    )
    role = v.auth.jwt.read_role("compat-role", path="jwt-nomad")
    check("vault jwt role read", role["data"]["token_policies"] == ["compat-policy"]
          and role["data"]["token_period"] == 1800, role)
    check("vault jwt role list", "compat-role" in v.auth.jwt.list_roles(path="jwt-nomad")["data"]["keys"])
    v.auth.jwt.delete_role("compat-role", path="jwt-nomad")
    v.sys.delete_acl_policy("compat-policy")
    try:
        v.sys.read_acl_policy("compat-policy")
        raise AssertionError("vault read after delete should fail")
    except hvac.exceptions.InvalidPath:
        print("ok  vault read after delete is 404")
    bad = hvac.Client(url=f"http://127.0.0.1:{VAULT_PORT}", token="bogus")
    check("vault bogus token is not authenticated", not bad.is_authenticated())


if __name__ == "__main__":
    wait_until_up()
    consul_checks()
    nomad_checks()
    vault_checks()
    print("third-party clients: all checks passed")
    sys.exit(0)
