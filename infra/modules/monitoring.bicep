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
// https://learn.microsoft.com/azure/templates/microsoft.insights/2021-08-01/scheduledqueryrules
// https://learn.microsoft.com/azure/templates/microsoft.insights/actiongroups

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

@description('Who is mailed when an action is poisoned (the admin mail, comma-separated). Empty: the alert shows in the portal only.')
param alertEmails string = ''

var alertEmailList = filter(map(split(alertEmails, ','), e => trim(e)), e => !empty(e))

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

// A message the host gave up on lands in its queue's poison queue, where a `record_poisoned_*`
// function (functions/reconcile.py, functions/poison.py) records or logs it; each invocation
// raises this alert: somebody must look (for an action, the license it was for is neither given
// nor taken). The query counts those functions' requests, one per invocation, named after the
// function
// (https://learn.microsoft.com/azure/azure-functions/analyze-telemetry-data#query-telemetry-data),
// because host.json keeps requests out of sampling and traces are not.
resource alertRecipients 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailList)) {
  name: '${applicationInsightsName}-admins'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'seatwarden'
    enabled: true
    emailReceivers: [for (email, i) in alertEmailList: {
      name: 'admin-${i}'
      emailAddress: email
      useCommonAlertSchema: true
    }]
  }
}

resource poisonedActionAlert 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = {
  name: '${applicationInsightsName}-poisoned'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Seatwarden: a message was poisoned'
    description: 'A queued piece of work failed every try; an action shows in `seatwarden runs show RUN --outcome poisoned`, the rest in the function log.'
    severity: 2
    enabled: true
    scopes: [applicationInsights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | where operation_Name startswith "record_poisoned_"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: empty(alertEmailList) ? [] : [alertRecipients.id]
    }
  }
}

output applicationInsightsName string = applicationInsights.name
// A connection string locates the component; with DisableLocalAuth it is not a credential.
output applicationInsightsConnectionString string = applicationInsights.properties.ConnectionString
output logAnalyticsName string = logAnalytics.name
