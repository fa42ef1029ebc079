// Storage for the Functions host, the Flex Consumption deployment package, and Seatwarden's state:
// Table Storage (users, runs, results, audit, deliveries, leases, cursors, subscriptions) and the
// queues that carry lookups and actions (DESIGN.md, "State in Table Storage" and "Flows").
//
// Keys are switched off: the host, the deployment and Seatwarden's own code reach the account with
// the managed identity only (identity-based host storage:
// https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
// and "Prevent Shared Key authorization":
// https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent).
// Resource reference: https://learn.microsoft.com/azure/templates/microsoft.storage/storageaccounts

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Table names. The code may prefix them (SEATWARDEN_TABLE_PREFIX); pass the prefixed names.')
param tableNames array

@description('Queue names. The host creates each "<queue>-poison" twin itself on the first poison message.')
param queueNames array

@description('Replication. LRS is enough for a state store that a nightly reconcile can rebuild; the audit table is the exception, choose ZRS or GRS if it must survive a zone or region loss.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // No account keys, no SAS signed with them: Entra ID (managed identity) only.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    // No anonymous blob access, TLS 1.2 or later, HTTPS only.
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowCrossTenantReplication: false
    // No virtual network in this template: the Flex Consumption app reaches the account over its
    // public endpoint, authenticated with its identity. A VNet-integrated variant would set
    // publicNetworkAccess to 'Disabled' and add private endpoints.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Flex Consumption runs the app from a package in this container
// (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#deployment).
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
