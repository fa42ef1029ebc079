// Seatwarden on Azure: one resource group holding a Flex Consumption function app (Python 3.11),
// its storage (host, deployment package, Table Storage state, queues), a user-assigned managed
// identity, a Key Vault for the secrets, and Log Analytics + Application Insights.
//
// Deployed by the Azure Developer CLI (azure.yaml: `azd up`). The layout follows the azd
// Flex Consumption Python quickstart, subscription scope with a resource group:
// https://github.com/Azure-Samples/functions-quickstart-python-http-azd
// https://learn.microsoft.com/azure/azure-functions/create-first-function-azure-developer-cli?pivots=programming-language-python
//
// After the first deployment, set the real secret values (the vault holds random placeholders).
// The app re-reads its Key Vault references within 24 hours, or at once on any change to its
// configuration (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#rotation):
//   az keyvault secret set --vault-name <AZURE_KEY_VAULT_NAME> --name atlassian-api-key --value ...
//   (likewise jira-webhook-secret, atlassian-audit-webhook-authorization, and with Graph
//    entra-client-secret and graph-client-state, and with self-service sign-in sign-in-client-secret)

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to name the resource group and derive unique resource names.')
param environmentName string

@minLength(1)
@description('Region for all resources. It must offer Flex Consumption: az functionapp list-flexconsumption-locations.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(1)
@description('Atlassian organization ID (admin.atlassian.com > Settings > API keys shows it).')
param atlassianOrgId string

@description('Object ID of the person or principal deploying (azd sets AZURE_PRINCIPAL_ID). Gets Key Vault Secrets Officer on the vault to set the secrets. Empty: nobody.')
param principalId string = ''

@description('Type of principalId (azd sets AZURE_PRINCIPAL_TYPE).')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Also give principalId table and queue data access, to run the seatwarden CLI against the deployed storage.')
param operatorStorageAccess bool = false

@description('Client ID of the Entra app registration for Microsoft Graph (entitlement groups, change notifications, mail). Empty: Graph not configured.')
param entraClientId string = ''

@description('Entra tenant of that app registration. Empty: the tenant of this deployment.')
param entraTenantId string = ''

@description('Policy document inline (SEATWARDEN_POLICY). Empty: not set.')
param seatwardenPolicy string = ''

@description('Policy file path inside the deployed package (SEATWARDEN_POLICY_FILE). Empty: not set.')
param seatwardenPolicyFile string = ''

@description('Table name prefix (SEATWARDEN_TABLE_PREFIX): letters and digits, starting with a letter. Empty: none.')
param tablePrefix string = ''

@description('Sender mailbox for license warnings (SEATWARDEN_MAIL_SENDER). Empty: no mail.')
param mailSender string = ''

@description('Client ID of the Entra app registration people sign in with for the self-service page (GET /api/relicense); its redirect URI is https://<app>/.auth/login/aad/callback. Empty: no sign-in, and the page answers 503.')
param signInClientId string = ''

@description('Whom the self-service page tells people to ask (SEATWARDEN_HELP_CONTACT). Empty: "your Atlassian administrators".')
param helpContact string = ''
@description('Administrators who get the run summary (SEATWARDEN_ADMIN_MAIL), comma-separated. Empty: no summary.')
param adminMail string = ''

@description('Nightly reconcile, NCRONTAB in UTC. Empty: 02:00 UTC.')
param reconcileSchedule string = ''

@description('Org-events poller, NCRONTAB in UTC. Empty: every minute.')
param eventsPollSchedule string = ''

@description('Graph subscription keeper, NCRONTAB in UTC. Empty: every 6 hours.')
param subscriptionKeeperSchedule string = ''

@description('Most instances the app scales out to.')
param maximumInstanceCount int = 40

@description('Instance memory in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Names ----------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var names = {
  resourceGroup: 'rg-${environmentName}'
  identity: 'id-seatwarden-${resourceToken}'
  storage: 'st${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  logAnalytics: 'log-${resourceToken}'
  applicationInsights: 'appi-${resourceToken}'
  plan: 'plan-${resourceToken}'
  functionApp: 'func-seatwarden-${resourceToken}'
}
var deploymentContainerName = 'app-package'

// State in Table Storage (DESIGN.md). The code prefixes table names with SEATWARDEN_TABLE_PREFIX.
var tableNames = [
  'users'
  'runs'
  'results'
  'audit'
  'deliveries'
  'leases'
  'cursors'
  'subscriptions'
]
// Work queues (DESIGN.md, "Flows"). Their "-poison" twins are created by the Functions host on the
// first message that fails maxDequeueCount (host.json) times.
var queueNames = [
  'seatwarden-actions'
  'seatwarden-lookups'
  'seatwarden-returns'
  'seatwarden-graph'
  'seatwarden-previews'
  'seatwarden-warnings'
]

// Resources ------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity './modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module storage './modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    tableNames: [for table in tableNames: '${tablePrefix}${table}']
    queueNames: queueNames
  }
}

module monitoring './modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    alertEmails: adminMail
  }
}

module keyVault './modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
  }
}

module roles './modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
    operatorStorageAccess: operatorStorageAccess
  }
}

module functionApp './modules/function.bicep' = {
  name: 'function'
  scope: rg
  // The roles first: the app reads host storage and resolves its Key Vault references as it starts.
  dependsOn: [
    roles
  ]
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    vaultReferenceUris: keyVault.outputs.referenceUris
    atlassianOrgId: atlassianOrgId
    entraTenantId: empty(entraTenantId) ? tenant().tenantId : entraTenantId
    entraClientId: entraClientId
    seatwardenPolicy: seatwardenPolicy
    seatwardenPolicyFile: seatwardenPolicyFile
    tablePrefix: tablePrefix
    mailSender: mailSender
    signInClientId: signInClientId
    helpContact: helpContact
    adminMail: adminMail
    reconcileSchedule: empty(reconcileSchedule) ? '0 0 2 * * *' : reconcileSchedule
    eventsPollSchedule: empty(eventsPollSchedule) ? '0 */1 * * * *' : eventsPollSchedule
    subscriptionKeeperSchedule: empty(subscriptionKeeperSchedule) ? '0 0 */6 * * *' : subscriptionKeeperSchedule
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

// Outputs (azd stores them in .azure/<env>/.env) -----------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_USER_ASSIGNED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output SEATWARDEN_VAULT_ENTRY_NAMES object = keyVault.outputs.entryNames
