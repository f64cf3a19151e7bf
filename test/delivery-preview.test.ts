import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import { preparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import { previewDelivery } from '../src/delivery/preview.ts';
import { describeEachDialect } from './support/databases.ts';
import { deliveryDefinition, insertList } from './support/fixtures.ts';

// The import keeps an address's local part as written (RFC 5321 §2.4) and lower-cases its domain.

describeEachDialect('delivery preview', (context) => {
  it('finds a recipient whose local part has capitals, before and after preparation', async () => {
    const store = context.store();
    const clock = manualClock();
    await insertList(store, 'capitals', [{ email: 'Ann.Lee@example.test', data: { first_name: 'Ann' } }]);
    const { id } = await createDelivery(
      store,
      deliveryDefinition({ listName: 'capitals' }),
      { validityHours: 24 },
      clock.now(),
    );
    const fromList = await previewDelivery(store, id, ' Ann.Lee@Example.TEST ');
    expect(fromList).toMatchObject({ email: 'Ann.Lee@example.test', subject: 'Hello Ann' });
    await prepareDelivery(preparationStore(store), id, { batchSize: 10, clock, isValidAddress: () => true });
    const fromLog = await previewDelivery(store, id, 'Ann.Lee@example.test');
    expect(fromLog).toMatchObject({ email: 'Ann.Lee@example.test', subject: 'Hello Ann' });
  });
});
