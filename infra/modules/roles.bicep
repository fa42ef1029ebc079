// Azure role assignments: what Seatwarden's managed identity (and, optionally, the operator who
// deploys it) may do. Least privilege: data-plane roles only, each on the one resource it is
// needed for; no Owner, Contributor, or Storage Account Contributor.
//
// Built-in role IDs: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
// Resource reference: https://learn.microsoft.com/azure/templates/microsoft.authorization/roleassignments
//
// | Role                           | Scope           | Why                                                    |
// |--------------------------------|-----------------|--------------------------------------------------------|
// | Storage Blob Data Owner        | storage account | Functions host storage (keys, timer and singleton      |
// |                                |                 | leases in blob containers it creates) and reading the  |
// |                                |                 | Flex deployment package. The documented host role:     |
// |                                |                 | functions-reference#connecting-to-host-storage-with-an-identity |
// | Storage Queue Data Contributor | storage account | Queue triggers read and delete messages; the code      |
// |                                |                 | enqueues lookups and actions; the host creates the     |
// |                                |                 | "<queue>-poison" queues (create needs Contributor).    |
// |                                |                 | functions-bindings-storage-queue-trigger#identity-based-connections |
// | Storage Table Data Contributor | storage account | Seatwarden's state and audit trail in Table Storage    |
// |                                |                 | (read, write, create tables); the host also persists   |
// |                                |                 | its diagnostic events there.                           |
// | Key Vault Secrets User         | Key Vault       | Resolve the app's Key Vault references (read secret    |
// |                                |                 | values only; cannot list or change them).              |
// | Monitoring Metrics Publisher   | App Insights    | Send telemetry with Entra auth (local auth is off).    |
//
// Not granted: Storage Account Contributor. The docs ask for it only when AzureWebJobsStorage is
// identity-based AND the app uses the blob trigger (which Seatwarden does not), see
// https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-blob-trigger#grant-permission-to-the-identity

@description('Storage account the app uses.')
param storageAccountName string

@description('Key Vault holding the app\'s secrets.')
param keyVaultName string

@description('Application Insights component the app reports to.')
param applicationInsightsName string

@description('Principal (object) ID of the app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('Principal (object) ID of the operator (azd sets AZURE_PRINCIPAL_ID to the signed-in user). Empty: no operator roles.')
param operatorPrincipalId string = ''

@description('Principal type of the operator.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Also give the operator table and queue data access (running the seatwarden CLI against the deployed storage: approvals, run history, audit).')
param operatorStorageAccess bool = false

var roleIds = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

var appStorageRoles = [
  roleIds.storageBlobDataOwner
  roleIds.storageQueueDataContributor
  roleIds.storageTableDataContributor
]

var operatorStorageRoles = [
  roleIds.storageQueueDataContributor
  roleIds.storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// --- the app's identity ----------------------------------------------------------------------

resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appStorageRoles: {
    name: guid(storage.id, identityPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: identityPrincipalId
      // A new identity may not have replicated yet; naming the type avoids the lookup that fails then.
      principalType: 'ServicePrincipal'
    }
  }
]

resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roleIds.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleIds.monitoringMetricsPublisher
    )
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- the operator (optional) -----------------------------------------------------------------

// Key Vault Secrets Officer: set the secret values after deployment (az keyvault secret set).
resource operatorSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roleIds.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

resource operatorStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in ((!empty(operatorPrincipalId) && operatorStorageAccess) ? operatorStorageRoles : []): {
    name: guid(storage.id, operatorPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: operatorPrincipalId
      principalType: operatorPrincipalType
    }
  }
]
