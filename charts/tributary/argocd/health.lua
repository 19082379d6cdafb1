-- Argo CD health check for Tributary's kinds (tributary.dev/v1alpha1): Tenant, Topic,
-- CassandraSink, KafkaUser and TopicGrant. One script serves all five; argocd-cm needs one
-- key per kind (see argocd-cm.yaml, generated from this file by generate.sh).
--
-- Argo CD runs it with gopher-lua (Lua 5.1) and only the base and table libraries: no string
-- or math functions, no goto. tests/tests/argocd_health.rs runs it the same way.
local hs = {}

-- The reasons of Ready=False that wait for a person to change something: this object's spec,
-- its Tenant's, the table, or the owning tenant's TopicGrant. The operator retries every
-- other reason on its own (api/src/conditions.rs lists them all).
local needs_a_change = {
  InvalidSpec = true,
  OwnershipConflict = true,
  NamespaceTaken = true,
  AdoptionRefused = true,
  Conflict = true,
  GuardrailViolated = true,
  PartitionsMismatch = true,
  ReplicationFactorMismatch = true,
  MappingInvalid = true,
  NotGranted = true,
  NoTenant = true,
  KafkaRejected = true,
  CassandraRejected = true,
}

-- A Tenant whose own namespace, logins, keyspace and role exist but some of whose Topics or
-- sinks are not ready: those show their own health, so the Tenant does not count them again.
local done_apart_from_children = {
  ChildrenNotReady = true,
}

local function describe(condition)
  local reason = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    return reason .. ": " .. condition.message
  end
  return reason
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local waiting = "Waiting for the operator to observe generation " .. tostring(generation)
if generation == nil then
  waiting = "Waiting for the operator"
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end
local observed = obj.status.observedGeneration
if generation ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = waiting .. " (it has observed " .. tostring(observed) .. ")"
  return hs
end

local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = waiting .. " (its Ready condition is of generation " .. tostring(ready.observedGeneration) .. ")"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" and ready.reason == "Suspended" then
  -- A CassandraSink stopped on purpose (spec.suspend).
  hs.status = "Suspended"
elseif ready.status == "False" and needs_a_change[ready.reason] then
  hs.status = "Degraded"
elseif ready.status == "False" and done_apart_from_children[ready.reason] then
  hs.status = "Healthy"
else
  -- Ready=False for a reason the operator retries, or Ready=Unknown.
  hs.status = "Progressing"
end
hs.message = describe(ready)
return hs
