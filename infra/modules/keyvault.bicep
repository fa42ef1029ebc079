// Key Vault for Seatwarden's secrets, read by the function app through Key Vault references.
//
// - RBAC authorization (no access policies), soft delete and purge protection:
//   https://learn.microsoft.com/azure/key-vault/general/rbac-guide
//   https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
// - App settings of the form @Microsoft.KeyVault(SecretUri=...) resolve with the app's
//   keyVaultReferenceIdentity (function.bicep):
//   https://learn.microsoft.com/azure/app-service/app-service-key-vault-references
// Resource references:
// https://learn.microsoft.com/azure/templates/microsoft.keyvault/vaults
// https://learn.microsoft.com/azure/templates/microsoft.keyvault/vaults/secrets
//
// NO SECRET VALUE IS IN THIS TEMPLATE. Each secret is created once with an unguessable
// placeholder ("unset-<random guid>"), so that the app's Key Vault references resolve and
// webhook checks fail closed until the operator sets the real value after deployment:
//
//   az keyvault secret set --vault-name <AZURE_KEY_VAULT_NAME> --name atlassian-api-key --value <key>
//
// @onlyIfNotExists() (Bicep 0.38.3 or later, https://learn.microsoft.com/azure/azure-resource-manager/bicep/resource-declaration#onlyifnotexists)
// makes a later `azd provision` leave the operator's values alone: the placeholder is written only
// when the secret does not exist yet. The placeholder seed comes from newGuid() at deployment
// time, so it is in neither the template nor the repository, and (being @secure) it is not shown
// among the deployment's parameters.

@description('Key Vault name: 3-24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Random seed for the first-deployment placeholder values. Leave the default.')
@secure()
param placeholderSeed string = newGuid()

// Secret names, one per secret app setting (function.bicep maps them).
var secretNames = {
  atlassianApiKey: 'atlassian-api-key'
  entraClientSecret: 'entra-client-secret'
  jiraWebhookSecret: 'jira-webhook-secret'
  auditWebhookAuthorization: 'atlassian-audit-webhook-authorization'
  graphClientState: 'graph-client-state'
  signInClientSecret: 'sign-in-client-secret'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC decides who reads secrets (roles.bicep), not vault access policies.
    enableRbacAuthorization: true
    accessPolicies: []
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Purge protection cannot be turned off again once on. A deleted vault (azd down) then keeps
    // its name reserved for the retention period: reuse the environment name to recover it, or
    // pick a new one.
    enablePurgeProtection: true
    // Reached over its public endpoint; the function app has no virtual network in this template.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

@onlyIfNotExists()
resource atlassianApiKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.atlassianApiKey
  properties: {
    contentType: 'Atlassian organization API key (Bearer). Set after deployment.'
    value: 'unset-${guid(placeholderSeed, secretNames.atlassianApiKey)}'
  }
}

@onlyIfNotExists()
resource entraClientSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.entraClientSecret
  properties: {
    contentType: 'Client secret of the Entra app registration Seatwarden uses for Microsoft Graph. Set after deployment.'
    value: 'unset-${guid(placeholderSeed, secretNames.entraClientSecret)}'
  }
}

@onlyIfNotExists()
resource jiraWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.jiraWebhookSecret
  properties: {
    contentType: 'Shared secret of the Jira admin webhook (HMAC-SHA256, X-Hub-Signature). Set after deployment.'
    value: 'unset-${guid(placeholderSeed, secretNames.jiraWebhookSecret)}'
  }
}

@onlyIfNotExists()
resource auditWebhookAuthorization 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.auditWebhookAuthorization
  properties: {
    contentType: 'Authorization header value the Atlassian audit-log webhook sends. Set after deployment.'
    value: 'unset-${guid(placeholderSeed, secretNames.auditWebhookAuthorization)}'
  }
}

@onlyIfNotExists()
resource graphClientState 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.graphClientState
  properties: {
    contentType: 'clientState of the Microsoft Graph change-notification subscriptions. Set after deployment.'
    value: 'unset-${guid(placeholderSeed, secretNames.graphClientState)}'
  }
}

@onlyIfNotExists()
resource signInClientSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.signInClientSecret
  properties: {
    contentType: 'Client secret of the Entra app registration people sign in with for the self-service page. Set after deployment.'
    value: 'unset-${guid(placeholderSeed, secretNames.signInClientSecret)}'
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
// Versionless secret URIs: the app picks up a new version within 24 hours, or at once on any
// configuration change of the app (Key Vault references, "Rotation").
output referenceUris object = {
  atlassianApiKey: '${vault.properties.vaultUri}secrets/${secretNames.atlassianApiKey}/'
  entraClientSecret: '${vault.properties.vaultUri}secrets/${secretNames.entraClientSecret}/'
  jiraWebhookSecret: '${vault.properties.vaultUri}secrets/${secretNames.jiraWebhookSecret}/'
  auditWebhookAuthorization: '${vault.properties.vaultUri}secrets/${secretNames.auditWebhookAuthorization}/'
  graphClientState: '${vault.properties.vaultUri}secrets/${secretNames.graphClientState}/'
  signInClientSecret: '${vault.properties.vaultUri}secrets/${secretNames.signInClientSecret}/'
}
output entryNames object = secretNames
