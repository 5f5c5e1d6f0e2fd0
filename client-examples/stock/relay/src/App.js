// The page's one query, and a lookup through `node` (Relay's object identification).
import { graphql } from 'react-relay';

export const appQuery = graphql`
  query AppQuery {
    me {
      id
      name
    }
    ...RequestList_query
  }
`;

export const appNodeQuery = graphql`
  query AppNodeQuery($id: ID!) {
    node(id: $id) {
      id
      __typename
      # Read only where the node is an AccessRequest (null otherwise).
      ...RequestActivity_request @alias
    }
  }
`;
