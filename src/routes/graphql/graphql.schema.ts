/**
 * The GraphQL schema: what REST offers an app's callers, in GraphQL's camelCase. Fields map onto
 * the same rows as REST (`createdAt` is `created_at`), and every operation needs the same
 * permission as its REST twin.
 */
export const typeDefs = /* GraphQL */ `
  # Scalars are described where they are implemented (graphql.resolvers.ts).
  scalar DateTime
  scalar JSON

  type Query {
    "Who is calling: the authentication context of the request."
    me: Me!
    "The caller's app."
    app: App!
    "Needs users:read."
    users(limit: Int = 20, offset: Int = 0, status: UserStatus, email: String): UserPage!
    "Needs users:read."
    user(id: ID!): User!
    "Needs roles:read."
    roles(limit: Int = 20, offset: Int = 0): RolePage!
    "Needs roles:read."
    role(name: String!): Role!
    "Needs api-keys:read."
    apiKeys(limit: Int = 20, offset: Int = 0): ApiKeyPage!
    "Needs devices:read."
    devices(limit: Int = 20, offset: Int = 0): DevicePage!
    "Needs devices:read."
    device(id: ID!): Device!
    "The latest position of every device. Needs gps:read."
    currentPositions: [Position!]!
    "Positions, newest first. Needs gps:read."
    positions(
      deviceId: ID
      from: DateTime
      to: DateTime
      "minLon,minLat,maxLon,maxLat"
      bbox: String
      limit: Int = 20
      offset: Int = 0
    ): PositionPage!
    "Needs gps:read."
    position(id: ID!): Position!
    "Needs audit:read."
    auditLogs(
      action: String
      actorId: String
      targetId: String
      from: DateTime
      to: DateTime
      limit: Int = 20
      offset: Int = 0
    ): AuditLogPage!
    "Needs stats:read."
    stats: Stats!
  }

  type Mutation {
    "Needs users:write."
    createUser(input: CreateUserInput!): User!
    "Needs users:write."
    updateUser(id: ID!, input: UpdateUserInput!): User!
    "Needs users:delete."
    deactivateUser(id: ID!): User!
    "Needs users:write."
    assignRole(userId: ID!, role: String!): User!
    "Needs users:write."
    removeRole(userId: ID!, role: String!): User!
    "Needs roles:write."
    createRole(input: CreateRoleInput!): Role!
    "Needs roles:write."
    updateRole(name: String!, input: UpdateRoleInput!): Role!
    "Needs roles:delete."
    deleteRole(name: String!): Boolean!
    "The key is in the answer only. Needs api-keys:write."
    createApiKey(input: CreateApiKeyInput!): CreatedApiKey!
    "Needs api-keys:delete."
    revokeApiKey(id: ID!): ApiKey!
    "The secret is in the answer only. Needs devices:write."
    createDevice(input: CreateDeviceInput!): CreatedDevice!
    "Needs devices:write."
    updateDevice(id: ID!, input: UpdateDeviceInput!): Device!
    "The new secret is in the answer only. Needs devices:write."
    rotateDeviceSecret(id: ID!): CreatedDevice!
    "Needs devices:delete."
    deleteDevice(id: ID!): Boolean!
    "Stores up to 1,000 points; bad ones are named in rejected. Needs gps:write."
    postPositions(points: [PointInput!]!): IngestResult!
    "The signed-in user's new email, confirmed by its current password: a link goes to the new address, a notice to the old. Answers verification_sent."
    changeEmail(email: String!, password: String!): String!
    "The signed-in user's password; their other sessions end. A wrong currentPassword counts towards the lockout."
    changePassword(currentPassword: String!, newPassword: String!): Boolean!
  }

  type Subscription {
    "Positions as they are stored: every device of the app, or one. Needs gps:read."
    positions(deviceId: ID): Position!
  }

  type Me {
    userId: ID
    apiKeyId: ID
    roles: [String!]!
    permissions: [String!]!
    "Holds every permission of its app (*:*)."
    isSuperAdmin: Boolean!
  }

  type App {
    id: ID!
    name: String!
    displayName: String!
    status: String!
    metadata: JSON!
    createdAt: DateTime!
    updatedAt: DateTime!
  }

  type Pagination {
    total: Int!
    limit: Int!
    offset: Int!
    hasMore: Boolean!
  }

  enum UserStatus {
    active
    deactivated
  }

  type User {
    id: ID!
    email: String!
    displayName: String
    status: UserStatus!
    roles: [String!]!
    metadata: JSON!
    lastLoginAt: DateTime
    createdAt: DateTime!
    updatedAt: DateTime!
  }

  type UserPage {
    data: [User!]!
    pagination: Pagination!
  }

  type Role {
    id: ID!
    name: String!
    displayName: String!
    permissions: [String!]!
    createdAt: DateTime!
    updatedAt: DateTime!
  }

  type RolePage {
    data: [Role!]!
    pagination: Pagination!
  }

  type ApiKey {
    id: ID!
    name: String!
    prefix: String!
    role: String!
    expiresAt: DateTime
    revokedAt: DateTime
    lastUsedAt: DateTime
    createdAt: DateTime!
  }

  type CreatedApiKey {
    apiKey: ApiKey!
    "pk_…, shown once."
    key: String!
  }

  type ApiKeyPage {
    data: [ApiKey!]!
    pagination: Pagination!
  }

  type Device {
    id: ID!
    name: String!
    "The user who registered it, whose personal data its positions are."
    ownerId: ID
    externalId: String
    status: String!
    expectedIntervalSeconds: Int!
    secretPrefix: String!
    metadata: JSON!
    lastSeenAt: DateTime
    createdAt: DateTime!
    updatedAt: DateTime!
    "Its latest position (batched across devices). Needs gps:read."
    currentPosition: Position
  }

  type CreatedDevice {
    device: Device!
    "dk_…, shown once."
    secret: String!
  }

  type DevicePage {
    data: [Device!]!
    pagination: Pagination!
  }

  type Position {
    id: ID!
    deviceId: ID!
    timestamp: DateTime!
    latitude: Float!
    longitude: Float!
    altitude: Float
    speed: Float
    heading: Float
    accuracy: Float
    battery: Float
    attributes: JSON!
    receivedAt: DateTime!
    "The device (batched across positions). Needs devices:read."
    device: Device!
  }

  type PositionPage {
    data: [Position!]!
    pagination: Pagination!
  }

  type AuditLog {
    id: ID!
    timestamp: DateTime!
    actorType: String!
    actorId: String
    action: String!
    targetType: String
    targetId: String
    ipAddress: String
    userAgent: String
    metadata: JSON!
  }

  type AuditLogPage {
    data: [AuditLog!]!
    pagination: Pagination!
  }

  type DayCount {
    day: String!
    points: Int!
  }

  type Stats {
    devices: Int!
    activeDevices: Int!
    users: Int!
    positions: Int!
    pointsPerDay: [DayCount!]!
    tokensIssued24h: Int!
  }

  type RejectedPoint {
    index: Int!
    reasons: [FieldError!]!
  }

  type FieldError {
    field: String!
    reason: String!
  }

  type IngestResult {
    stored: Int!
    duplicates: Int!
    rejected: [RejectedPoint!]!
    positions: [Position!]!
  }

  input CreateUserInput {
    email: String!
    password: String!
    displayName: String
    roles: [String!]
    metadata: JSON
  }

  input UpdateUserInput {
    email: String
    displayName: String
    password: String
    status: UserStatus
    metadata: JSON
  }

  input CreateRoleInput {
    name: String!
    displayName: String
    permissions: [String!]
  }

  input UpdateRoleInput {
    displayName: String
    permissions: [String!]
  }

  input CreateApiKeyInput {
    name: String!
    role: String!
    expiresAt: DateTime
  }

  input CreateDeviceInput {
    name: String!
    externalId: String
    expectedIntervalSeconds: Int
    metadata: JSON
  }

  input UpdateDeviceInput {
    name: String
    externalId: String
    expectedIntervalSeconds: Int
    metadata: JSON
  }

  input PointInput {
    deviceId: ID!
    timestamp: DateTime!
    latitude: Float!
    longitude: Float!
    altitude: Float
    speed: Float
    heading: Float
    accuracy: Float
    battery: Float
    attributes: JSON
  }
`;
