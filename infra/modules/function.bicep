// The Flex Consumption plan and the Seatwarden function app (Python 3.11, programming model v2).
//
// - Flex Consumption plan and app in Bicep, functionAppConfig (deployment storage, runtime,
//   scale and concurrency):
//   https://learn.microsoft.com/azure/azure-functions/functions-infrastructure-as-code?pivots=flex-consumption-plan
//   https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan
//   Sample this follows: https://github.com/Azure-Samples/azure-functions-flex-consumption-samples/tree/main/IaC/bicep
// - Settings Flex Consumption no longer takes (FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
//   WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*, WEBSITE_TIME_ZONE, ...) are deliberately absent:
//   https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
// - Identity-based host storage (AzureWebJobsStorage__accountName / __credential / __clientId):
//   https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
// - Key Vault references with a user-assigned identity (keyVaultReferenceIdentity):
//   https://learn.microsoft.com/azure/app-service/app-service-key-vault-references
// Resource references:
// https://learn.microsoft.com/azure/templates/microsoft.web/serverfarms
// https://learn.microsoft.com/azure/templates/microsoft.web/sites
// https://learn.microsoft.com/azure/templates/microsoft.web/sites/config-appsettings

@description('Function app name (globally unique host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region (must offer Flex Consumption: az functionapp list-flexconsumption-locations).')
param location string

@description('Tags for the plan and app; the app also gets azd-service-name.')
param tags object = {}

@description('Resource ID of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client ID of that identity.')
param identityClientId string

@description('Storage account for host storage and the deployment package.')
param storageAccountName string

@description('Blob endpoint of that account, e.g. https://<name>.blob.core.windows.net/.')
param storageBlobEndpoint string

@description('Container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (a locator, not a credential: local auth is off).')
param applicationInsightsConnectionString string

@description('Versionless Key Vault secret URIs (keyvault.bicep output referenceUris).')
param vaultReferenceUris object

@description('Atlassian organization ID.')
param atlassianOrgId string

@description('Entra tenant of the app registration Seatwarden uses for Microsoft Graph.')
param entraTenantId string

@description('Client ID of that app registration. Empty: Graph is not configured and entitlement is read from the groups Entra syncs into Atlassian (DESIGN.md).')
param entraClientId string = ''

@description('Policy document inline (SEATWARDEN_POLICY, JSON or YAML). Empty: not set.')
param seatwardenPolicy string = ''

@description('Path to the policy file inside the deployed package (SEATWARDEN_POLICY_FILE). Empty: not set.')
param seatwardenPolicyFile string = ''

@description('Table name prefix (SEATWARDEN_TABLE_PREFIX). Empty: not set.')
param tablePrefix string = ''

@description('Sender mailbox for license warnings (SEATWARDEN_MAIL_SENDER). Empty: no mail.')
param mailSender string = ''

@description('Client ID of the Entra app registration people sign in with for the self-service page (GET /api/relicense). Empty: no App Service authentication, and the page answers 503.')
param signInClientId string = ''

@description('Whom the self-service page tells people to ask (SEATWARDEN_HELP_CONTACT): an address or a team name. Empty: "your Atlassian administrators".')
param helpContact string = ''
@description('Administrators who get the run summary (SEATWARDEN_ADMIN_MAIL), comma-separated. Empty: no summary.')
param adminMail string = ''

@description('NCRONTAB schedule of the nightly reconcile. Flex Consumption runs timers in UTC (WEBSITE_TIME_ZONE is not supported).')
param reconcileSchedule string

@description('NCRONTAB schedule of the org-events poller.')
param eventsPollSchedule string

@description('NCRONTAB schedule of the Graph subscription keeper.')
param subscriptionKeeperSchedule string

@description('Upper bound on instances. Each instance runs up to batchSize + newBatchThreshold queue messages at once (host.json), so this also bounds the calls made to the rate-limited Atlassian API. The Flex docs gave 40 as the lowest allowed maximum.')
param maximumInstanceCount int = 40

@description('Instance memory size in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var graphEnabled = !empty(entraClientId)
var signInEnabled = !empty(signInClientId)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    // Linux: Flex Consumption runs on Linux only.
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the app to deploy service "api" (azure.yaml) by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity, not a system-assigned one.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Every app setting the app gets. Each name must be one the code or the Functions host reads
// (tests/test_deployment_files.py checks this block). Secrets are Key Vault references only.
// This resource replaces the whole set on every `azd provision`: change settings here (or through
// the parameters), not in the portal.
// app-settings:begin
var hostSettings = {
  // Host storage through the managed identity: no connection string, no account key.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Telemetry with Entra auth: ClientId=<user-assigned identity>;Authorization=AAD
  // (https://learn.microsoft.com/azure/azure-functions/configure-monitoring#enable-microsoft-entra-authentication).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // Azure SDK credentials (DefaultAzureCredential / ManagedIdentityCredential) pick this identity.
  AZURE_CLIENT_ID: identityClientId
}

var seatwardenSettings = {
  ATLASSIAN_ORG_ID: atlassianOrgId
  ATLASSIAN_API_KEY: '@Microsoft.KeyVault(SecretUri=${vaultReferenceUris.atlassianApiKey})'
  JIRA_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${vaultReferenceUris.jiraWebhookSecret})'
  ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION: '@Microsoft.KeyVault(SecretUri=${vaultReferenceUris.auditWebhookAuthorization})'
  SEATWARDEN_PUBLIC_URL: 'https://${app.properties.defaultHostName}'
  RECONCILE_SCHEDULE: reconcileSchedule
  EVENTS_POLL_SCHEDULE: eventsPollSchedule
  SUBSCRIPTION_KEEPER_SCHEDULE: subscriptionKeeperSchedule
}

// Microsoft Graph: only when an app registration is given.
var graphSettings = graphEnabled ? {
  ENTRA_TENANT_ID: entraTenantId
  ENTRA_CLIENT_ID: entraClientId
  ENTRA_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${vaultReferenceUris.entraClientSecret})'
  GRAPH_CLIENT_STATE: '@Microsoft.KeyVault(SecretUri=${vaultReferenceUris.graphClientState})'
} : {}

// App Service authentication reads the sign-in app's client secret from this setting
// (registration.clientSecretSettingName below).
var signInSettings = signInEnabled ? {
  MICROSOFT_PROVIDER_AUTHENTICATION_SECRET: '@Microsoft.KeyVault(SecretUri=${vaultReferenceUris.signInClientSecret})'
} : {}

// Optional settings: left out when empty, so the code's defaults apply.
var optionalSettings = union(
  empty(seatwardenPolicy) ? {} : { SEATWARDEN_POLICY: seatwardenPolicy },
  empty(seatwardenPolicyFile) ? {} : { SEATWARDEN_POLICY_FILE: seatwardenPolicyFile },
  empty(tablePrefix) ? {} : { SEATWARDEN_TABLE_PREFIX: tablePrefix },
  empty(mailSender) ? {} : { SEATWARDEN_MAIL_SENDER: mailSender },
  empty(helpContact) ? {} : { SEATWARDEN_HELP_CONTACT: helpContact },
  empty(adminMail) ? {} : { SEATWARDEN_ADMIN_MAIL: adminMail }
)
// app-settings:end

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: union(hostSettings, seatwardenSettings, graphSettings, signInSettings, optionalSettings)
}

// App Service authentication ("Easy Auth") with Microsoft Entra ID, for the self-service page.
// - Every path requires sign-in except those that authenticate themselves: the webhooks
//   (Atlassian and Graph call them with a signature, an Authorization value or a clientState,
//   never with an Entra sign-in), the admin API (function keys) and the health probe. New routes
//   are protected by default. A trailing /* excludes a whole subtree (App Service product team,
//   https://github.com/MicrosoftDocs/azure-docs/issues/86514). tests/test_deployment_files.py
//   checks this list against the routes the app registers.
// - The platform passes the signed-in person's claims in X-MS-CLIENT-PRINCIPAL, a header
//   "external requests aren't allowed to set"
//   (https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities);
//   the function still refuses a request without one (401).
// - With a client secret, sign-in uses the hybrid flow (a code and an ID token), not the implicit
//   grant (https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad).
//   The page needs the claims only, so no provider tokens are stored.
// - Flex Consumption: its preview docs said EasyAuth was not supported and did not block
//   unauthenticated callers (MicrosoftDocs/azure-docs, articles/azure-functions/flex-consumption-plan.md,
//   2024). Check a deployment as the README says; the function fails closed either way.
// https://learn.microsoft.com/azure/templates/microsoft.web/sites/config-authsettingsv2
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (signInEnabled) {
  parent: app
  name: 'authsettingsV2'
  // After the app settings: the client secret setting must exist, and two config writes to one
  // site at once can conflict.
  dependsOn: [
    appSettings
  ]
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/webhooks/*'
        '/api/admin/*'
        '/api/health'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: signInClientId
          clientSecretSettingName: 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
output uri string = 'https://${app.properties.defaultHostName}'
output planName string = plan.name
