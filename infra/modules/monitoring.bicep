// Log Analytics workspace and a workspace-based Application Insights component.
//
// Local (instrumentation-key) authentication is switched off: the app sends telemetry with its
// managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING, set in function.bicep) and the
// Monitoring Metrics Publisher role (roles.bicep). See "Enable Microsoft Entra authentication":
// https://learn.microsoft.com/azure/azure-functions/configure-monitoring#enable-microsoft-entra-authentication
// https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication
// Resource references:
// https://learn.microsoft.com/azure/templates/microsoft.operationalinsights/workspaces
// https://learn.microsoft.com/azure/templates/microsoft.insights/components

@description('Log Analytics workspace name.')
param logAnalyticsName string

@description('Application Insights component name.')
param applicationInsightsName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Days Log Analytics keeps data. Seatwarden\'s audit trail lives in Table Storage, not here.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Entra ID only: telemetry without a token is refused.
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
// A connection string locates the component; with DisableLocalAuth it is not a credential.
output applicationInsightsConnectionString string = applicationInsights.properties.ConnectionString
output logAnalyticsName string = logAnalytics.name
