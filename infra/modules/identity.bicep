// The one user-assigned managed identity Seatwarden runs as.
//
// A user-assigned identity (rather than the app's system-assigned one) exists before the function
// app does, so its role assignments (storage, Key Vault, Application Insights) can be in place when
// the app first starts and resolves its Key Vault references:
// https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#access-vaults-with-a-user-assigned-identity
// Resource reference:
// https://learn.microsoft.com/azure/templates/microsoft.managedidentity/userassignedidentities

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
