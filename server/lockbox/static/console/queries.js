// The GraphQL documents the console sends.

export const REQUEST_FIELDS = `fragment R on AccessRequest {
  id status createdAt expiresAt durationSeconds justification resources
  decidedAt decisionReason accessStartsAt accessEndsAt
  decidedBy { id name }
  ticket { id title }
  engineer { id name email }
  tenant { id name }
  requiredApprovals emergency grantedResources
  approvals { approver { id name } at reason durationSeconds resources }
  emergencyReview { reviewer { id name } at accepted note }
}`;

export const ME = `query Me {
  me { id name email role scopes tenant { id name lockboxEnabled } }
}`;

// Every page of requests in some statuses (the overview walks all of them).
export const REQUESTS = `query Requests($status: [AccessRequestStatus!], $first: Int!, $after: String) {
  accessRequests(status: $status, first: $first, after: $after) {
    edges { cursor node { ...R } }
    pageInfo { hasNextPage endCursor }
  }
} ${REQUEST_FIELDS}`;

// Only the cursors: the index that lets the console page from the newest end.
export const REQUEST_CURSORS = `query RequestCursors($status: [AccessRequestStatus!], $first: Int!, $after: String) {
  page: accessRequests(status: $status, first: $first, after: $after) {
    edges { cursor }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const REQUEST_PAGE = `query RequestPage($status: [AccessRequestStatus!], $first: Int!, $after: String) {
  page: accessRequests(status: $status, first: $first, after: $after) {
    edges { cursor node { ...R } }
  }
} ${REQUEST_FIELDS}`;

export const ONE_REQUEST = `query OneRequest($id: ID!) { accessRequest(id: $id) { ...R } } ${REQUEST_FIELDS}`;

export const DECIDE = {
  approve: `mutation Approve($id: ID!, $reason: String, $durationSeconds: Int, $resources: [String!]) {
    approveRequest(id: $id, reason: $reason, durationSeconds: $durationSeconds, resources: $resources) { ...R }
  } ${REQUEST_FIELDS}`,
  deny: `mutation Deny($id: ID!, $reason: String) { denyRequest(id: $id, reason: $reason) { ...R } } ${REQUEST_FIELDS}`,
  revoke: `mutation Revoke($id: ID!, $reason: String) { revokeAccess(id: $id, reason: $reason) { ...R } } ${REQUEST_FIELDS}`,
};

// Break-glass access no decider has reviewed yet.
export const EMERGENCY = `query Emergency($first: Int!, $after: String) {
  emergencyAccessToReview(first: $first, after: $after) {
    edges { cursor node { ...R } }
    pageInfo { hasNextPage endCursor }
  }
} ${REQUEST_FIELDS}`;

export const REVIEW = `mutation Review($id: ID!, $accepted: Boolean!, $note: String) {
  reviewEmergencyAccess(id: $id, accepted: $accepted, note: $note) { ...R }
} ${REQUEST_FIELDS}`;

export const REQUEST_UPDATES = `subscription RequestUpdates { accessRequestUpdates { ...R } } ${REQUEST_FIELDS}`;

export const ACTIVITY = `subscription Activity($requestId: ID!, $after: String) {
  engineerActivity(requestId: $requestId, after: $after) {
    id cursor at resource action allowed denialReason detail engineer { name }
  }
}`;

export const AUDIT_CURSORS = `query AuditCursors($first: Int!, $after: String) {
  page: auditLog(first: $first, after: $after) {
    edges { cursor }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const AUDIT_PAGE = `query AuditPage($first: Int!, $after: String) {
  page: auditLog(first: $first, after: $after) {
    edges { cursor node { id seq at action requestId detail hash prevHash actor { name role } } }
  }
}`;

const SETTINGS_FIELDS = `settings { pendingRequestTtlSeconds defaultAccessSeconds maxAccessSeconds notificationEmails
  requiredApprovals allowEmergencyAccess emergencyMaxSeconds }`;

export const TENANT = `query Tenant {
  me { tenant { id name lockboxEnabled resourceRoots ${SETTINGS_FIELDS} } }
}`;

export const SET_ENABLED = `mutation SetLockboxEnabled($enabled: Boolean!) {
  setLockboxEnabled(enabled: $enabled) { id name lockboxEnabled resourceRoots ${SETTINGS_FIELDS} }
}`;

export const UPDATE_SETTINGS = `mutation UpdateSettings($input: LockboxSettingsInput!) {
  updateLockboxSettings(input: $input) { id name lockboxEnabled resourceRoots ${SETTINGS_FIELDS} }
}`;

export const NOTIFICATIONS = `query Notifications($first: Int!, $after: String) {
  notifications(first: $first, after: $after) {
    edges { node { id channel event recipient webhookUrl status attempts lastError createdAt sentAt requestId } }
    pageInfo { hasNextPage endCursor }
  }
}`;
